"""The review endpoints: the "are these the same person?" questions (read
scope) and their answers (admin scope). Thin views over
``application.review``."""

from __future__ import annotations

from flask import Response

from application import review
from application.schemas import ReviewAnswer, ReviewAnswerResponse, ReviewPairsParams, ReviewPairsResponse
from service.api import api, json_body, ok, query_args
from service.context import actor, audited, served, state


@api.get("/review/pairs", operation_id="reviewPairs", scope="read", response=ReviewPairsResponse,
         query=ReviewPairsParams, summary="Pairs of people or unnamed groups that may be one person",
         description="Most likely one person first: the Euclidean distance between the means of their faces, "
         "within `review.max_distance`; a pair answered “different” is never offered again (docs/people.md).")
def review_pairs() -> Response:
    params = ReviewPairsParams.model_validate(query_args())
    st = state()
    return ok(review.review_pairs(served().store, st.annotations, st.settings.review, params.limit))


@api.post("/review/pairs", operation_id="answerReviewPair", scope="admin", response=ReviewAnswerResponse,
          json=ReviewAnswer, errors=(400, 404, 409), summary="Answer a question: the same person, or different people",
          description="Same: the two become one (a group is named; of two people, the one with fewer confirmed "
          "faces is merged into the other; two groups join). Different: remembered, so that neither clustering "
          "nor recognition puts their faces together.")
def answer_review_pair() -> Response:
    req = json_body(ReviewAnswer)
    answered = review.answer(served().store, state().annotations, req.a, req.b, req.same, actor())
    audited(params={"same": req.same, "a": req.a.model_dump(), "b": req.b.model_dump()},
            face_ids=answered.face_ids, results=len(answered.face_ids))
    return ok(answered)
