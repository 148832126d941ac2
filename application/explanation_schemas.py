"""The API's models of explanations, comparisons and lookalikes (``GET
/api/v1/faces/<id>/explanation``, ``/faces/<a>/compare/<b>``,
``/people/<id>/lookalikes``). Every distance is Euclidean."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from application.compare import Comparison, strongest_cells
from application.explanations import Explanation
from application.lookalikes import Lookalike
from application.recognition_trade import RecognitionTrade
from application.tradeoff import Curve

Rule = Literal["confirmed", "cluster", "recognised_close", "recognised_support", "recognised", "stranger",
               "unnamed_group", "not_grouped"]


class EvidenceModel(BaseModel):
    face_id: int
    person_id: int | None
    person: str | None
    distance: float = Field(..., description="Euclidean, from the explained face.")


class NearestPerson(BaseModel):
    person_id: int
    person: str
    distance: float = Field(..., description="Euclidean, from the face to this person's nearest confirmed face.")


class RecognitionCheck(BaseModel):
    """What the recognition rule says of the face today, against its nearest named person."""

    branch: Literal["close", "support"] | None = Field(
        ..., description="The rule's branch that suggests the person; null: none does.")
    failed: Literal["max_distance", "margin", "support_distance"] | None = Field(
        ..., description="The condition that stopped it (null when it suggests).")
    d1: float = Field(..., description="To the person's nearest confirmed face.")
    d2: float | None = Field(..., description="To anyone else's nearest confirmed face (null: nobody else).")
    support: float | None = Field(None, description="To the mean of the person's k nearest confirmed faces.")
    k: int = 0


class GroupPlaceModel(BaseModel):
    run_id: int
    method: str
    group: int | None = Field(..., description="Its cluster in the last run; null: a stranger.")
    nearest_group: int | None
    centre_distance: float | None = Field(..., description="To the centre of `nearest_group`.")
    stranger_distance: float | None
    neighbour_distance: float | None
    nearest_face_distance: float | None = Field(..., description="To the nearest other face of the index now.")


class ExplanationResponse(BaseModel):
    """Why a face is who it is: contract fields first (``face_id``,
    ``person``, ``source``, ``stranger``, ``rule``, ``evidence``, ``margin``)."""

    model_config = ConfigDict(json_schema_extra={"description": "The faces and numbers that decided the face's "
                                                 "person, or its stranger flag, nearest first."})

    face_id: int
    person: str | None
    person_id: int | None
    source: Literal["confirmed", "cluster", "suggested"] | None
    stranger: bool
    rule: Rule
    because: list[str] = Field(..., description="The decision in plain words.")
    evidence: list[EvidenceModel] = Field(..., description="Nearest first.")
    margin: float | None = Field(..., description="Runner-up person's distance minus the nearest person's.")
    nearest: NearestPerson | None
    runner_up: NearestPerson | None
    recognition: RecognitionCheck | None
    current: bool = Field(..., description="False: a suggestion today's confirmed faces no longer support.")
    group: GroupPlaceModel | None
    would_change: list[str]
    thresholds: dict[str, float]

    @classmethod
    def of(cls, e: Explanation) -> ExplanationResponse:
        check = e.recognition
        return cls(
            face_id=e.face_id, person=e.person, person_id=e.person_id, source=e.source,
            stranger=e.stranger, rule=e.rule, because=e.because,
            evidence=[EvidenceModel(**vars(ev)) for ev in e.evidence], margin=e.margin,
            nearest=NearestPerson(**vars(e.nearest)) if e.nearest else None,
            runner_up=NearestPerson(**vars(e.runner_up)) if e.runner_up else None,
            recognition=None if check is None else RecognitionCheck(
                branch=check.branch, failed=check.failed, d1=round(check.d1, 4),
                d2=None if check.d2 == float("inf") else round(check.d2, 4),
                support=None if check.support is None else round(check.support, 4), k=check.k),
            current=e.current, group=GroupPlaceModel(**vars(e.group)) if e.group else None,
            would_change=e.would_change, thresholds=e.thresholds,
        )


class Cell(BaseModel):
    row: int
    column: int
    change: float = Field(..., description="Change of Euclidean distance when the cell is hidden.")


class CompareResponse(BaseModel):
    """Two faces and where they match: contract field ``distance`` first."""

    distance: float = Field(..., description="Euclidean, between the stored embeddings (what search uses).")
    face_a: int
    face_b: int
    chip_distance: float = Field(..., description="Between the two aligned chips re-encoded: the maps' baseline.")
    same_person_distance: float = Field(..., description="Within this, recognition may call them one person.")
    grid: int = Field(..., description="Cells a side of each map, over the 150x150 px aligned chip.")
    cell_px: float
    map_a: list[list[float]] = Field(..., description="Row by row: the change of distance when that cell of face "
                                     "a is hidden. > 0: the cell makes them alike; < 0: different.")
    map_b: list[list[float]]
    alike: list[Cell] = Field(..., description="The cells (of either face) that make them most alike.")
    different: list[Cell]

    @classmethod
    def of(cls, c: Comparison, same_person_distance: float) -> CompareResponse:
        strongest = strongest_cells(c)
        return cls(
            distance=c.distance, face_a=c.face_a, face_b=c.face_b, chip_distance=c.chip_distance,
            same_person_distance=same_person_distance, grid=c.grid, cell_px=round(150 / c.grid, 2),
            map_a=c.map_a.round(4).tolist(), map_b=c.map_b.round(4).tolist(),
            alike=[Cell(row=r, column=col, change=v) for r, col, v in strongest["alike"]],
            different=[Cell(row=r, column=col, change=v) for r, col, v in strongest["different"]],
        )


class LookalikesParams(BaseModel):
    """Query of ``GET /api/v1/people/<id>/lookalikes``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(10, ge=1, le=100, description="People at most.")


class LookalikeModel(BaseModel):
    person_id: int
    name: str
    distance: float = Field(..., description="Euclidean: the mean of the 3 nearest pairs of confirmed faces, at "
                            "most one pair per face of the other person.")
    face_id: int = Field(..., description="The person's face in the nearest pair.")
    other_face_id: int = Field(..., description="The other person's face in the nearest pair.")
    pair_distance: float

    @classmethod
    def of(cls, found: Lookalike) -> LookalikeModel:
        return cls(**vars(found))


class LookalikesResponse(BaseModel):
    people: list[LookalikeModel] = Field(..., description="Nearest first; never the person themself.")


class TradeoffPoint(BaseModel):
    max_distance: float = Field(..., description="Euclidean.")
    precision: float = Field(..., description="Expected share of the faces found within it that are the person.")
    recall: float = Field(..., description="Expected share of the person's faces found within it.")


class RecognitionPoint(BaseModel):
    factor: float = Field(..., description="Every distance of the rule times this (1: as set).")
    max_distance: float
    found: float | None = Field(..., description="Held-out confirmed faces named rightly, of those whose person "
                                "has other confirmed faces.")
    right: float | None = Field(..., description="Names given that are right.")
    strangers_named: float | None = Field(..., description="Faces of people named once that got a name.")


class TradeoffResponse(BaseModel):
    """What a search within each distance can be expected to find."""

    source: Literal["named", "lfw"] = Field(..., description="named: estimated from this index's confirmed faces; "
                                            "lfw: the curve measured on LFW DevTrain (too few people named yet).")
    people: int = Field(..., description="Named people the estimate rests on.")
    same_pairs: int = Field(..., description="Pairs of confirmed faces of one person it rests on.")
    faces: int
    points: list[TradeoffPoint]
    recognition: list[RecognitionPoint] | None = Field(
        ..., description="The recognition rule, as set and scaled stricter or looser, held out over the confirmed "
        "faces in 5 folds (null: fewer than 20 confirmed faces).")

    @classmethod
    def of(cls, curve: Curve, trade: RecognitionTrade | None) -> TradeoffResponse:
        return cls(source=curve.source, people=curve.people, same_pairs=curve.same_pairs,
                   faces=curve.faces, points=[TradeoffPoint(max_distance=t, precision=p, recall=r)
                                              for t, p, r in zip(curve.thresholds, curve.precision, curve.recall)],
                   recognition=None if trade is None else [RecognitionPoint(**vars(p)) for p in trade.points])
