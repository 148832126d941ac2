"""The people pages in Chromium: cluster, name a cluster, then correct a
person (not this person, move, merge and undo), as an administrator would."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import check_accessibility


def test_cluster_name_and_correct_people(page: Page, live_server):
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").click()
    clusters = page.locator("section.cluster:has(form.name-form)")
    expect(clusters.first).to_be_visible()
    check_accessibility(page, "people")
    first = clusters.nth(0)
    first_faces = first.locator("[data-face-id]").count()
    first.get_by_label("Name").fill("Alice Example")
    first.get_by_role("button", name="Save").click()
    page.locator("section.cluster:has(form.name-form)").first.get_by_label("Name").fill("Bob Example")
    page.locator("section.cluster:has(form.name-form)").first.get_by_role("button", name="Save").click()
    page.get_by_role("link", name="Alice Example", exact=True).first.click()
    expect(page.get_by_role("heading", name="Alice Example", exact=True)).to_be_visible()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces)
    check_accessibility(page, "person")
    # Not this person: the face leaves the page.
    page.get_by_label(re.compile(r"Select the face in ")).first.check()
    page.get_by_role("button", name="Not this person").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 1)
    # Moved to Bob: the face leaves this page too.
    page.get_by_label(re.compile(r"Select the face in ")).first.check()
    page.get_by_label("Move to").select_option(label="Bob Example")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 2)
    # Merge with Bob, then undo it.
    page.get_by_label("Merge with").select_option(label="Bob Example")
    page.get_by_role("button", name="Merge…").click()
    page.get_by_role("button", name="Merge Bob Example into Alice Example").click()  # asked once: who stays
    expect(page.get_by_role("status")).to_have_text(re.compile("Merged Bob Example into Alice Example."))
    expect(page.get_by_role("button", name="Undo merge")).to_be_visible()
    merged = page.locator("ul.grid [data-face-id]").count()
    assert merged > first_faces - 1
    page.get_by_role("button", name="Undo merge").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 2)
    page.goto(live_server.url + "/people")
    expect(page.locator("a.person", has_text="Bob Example").first).to_be_visible()


def test_every_action_answers_in_place_with_undo(page: Page, live_server):
    """Name a group after taking a face out of it, then on the person's
    page select faces by clicking them (highlighted, counted), mark one
    "Not this person", undo it, and name a face on its photo page; at
    1280 and 390 px wide."""
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"Grouped \d+ faces again: \d+ groups."))
    page.locator("a.group").first.click()
    expect(page.get_by_role("button", name="Remove from this group")).to_be_visible()
    tiles = page.locator("ul.grid li.tile")
    count = tiles.count()
    tiles.last.locator("img").click()  # a click on the face selects it
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    page.get_by_role("button", name="Remove from this group").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Took 1 face out of the group"))
    expect(tiles).to_have_count(count - 1)
    page.get_by_label("Name").fill("Carol Example")
    page.get_by_label("Name").press("Enter")  # Enter in Name saves (not the first button of the page)
    expect(page.get_by_role("status")).to_have_text(re.compile(f"Named {count - 1} faces? Carol Example."))
    check_accessibility(page, "cluster")
    page.get_by_role("status").get_by_role("link", name="Carol Example").click()
    expect(page.get_by_role("heading", name="Carol Example", exact=True)).to_be_visible()
    page.get_by_role("button", name="Not this person").click()  # nothing selected: said here, nothing lost
    expect(page.get_by_role("alert")).to_have_text(re.compile("Select one or more faces first"))
    expect(page).to_have_url(re.compile(r"/people/\d+$"))
    first = page.locator("ul.grid li.tile").first
    first.locator("img").click()
    expect(first).to_have_css("outline-style", "solid")
    page.get_by_role("button", name="Not this person").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Marked 1 face as not Carol Example."))
    expect(page.locator("ul.grid li.tile")).to_have_count(count - 2)
    page.get_by_role("status").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Undone: marked 1 face as not Carol Example."))
    expect(page.locator("ul.grid li.tile")).to_have_count(count - 1)
    check_accessibility(page, "person-undone")
    page.set_viewport_size({"width": 390, "height": 844})
    check_accessibility(page, "person-undone-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    # A face named on its photo.
    page.locator("ul.grid li.tile a.file").first.click()
    field = page.get_by_label("Name").first
    field.fill("Dan Example")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Made 1 face the new person Dan Example"))
    check_accessibility(page, "photo-named")


def test_naming_and_rejecting_without_a_mouse(page: Page, live_server):
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").press("Enter")
    expect(page.locator("section.cluster:has(form.name-form)").first).to_be_visible()
    page.wait_for_load_state("load")  # the shortcuts' script has run
    page.locator("body").press("/")  # the first Name field
    expect(page.locator(".name-form input[name=name]").first).to_be_focused()
    page.keyboard.type("Keyboard Person")
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Keyboard Person", exact=True).first
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard Person", exact=True)).to_be_visible()
    page.wait_for_load_state("load")
    count = page.locator("ul.grid [data-face-id]").count()
    page.locator("body").press("a")  # select every face on the page
    page.locator("body").press("n")  # not this person
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(0)
    assert count > 0


def test_typing_an_existing_name_offers_the_merge(page: Page, live_server):
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").click()
    unnamed = page.locator("section.cluster:has(form.name-form)")
    expect(unnamed.first).to_be_visible()
    page.wait_for_load_state("load")
    first_faces = unnamed.nth(0).locator("[data-face-id]").count()
    forms = page.locator("form.name-form").count()
    unnamed.nth(0).get_by_label("Name").fill("Alice Example")
    unnamed.nth(0).get_by_role("button", name="Save").click()
    expect(page.locator("form.name-form")).to_have_count(forms - 1)  # the new page, not the old one
    page.wait_for_load_state("load")
    second = page.locator("section.cluster:has(form.name-form)").first
    size = int(re.search(r"· (\d+) faces?", second.get_by_role("heading").inner_text()).group(1))
    field = second.get_by_label("Name")
    field.press_sequentially("alice exam")
    expect(second.locator(".help")).to_have_text("An existing name adds these faces to that person (a merge).")
    field.press_sequentially("ple")
    expect(second.locator(".help")).to_have_text(
        f"Alice Example already exists: Save merges these {size} faces into Alice Example.")
    check_accessibility(page, "people-merge-offer")
    forms = page.locator("form.name-form").count()
    field.press("Enter")  # (a click on Save while Chromium's list of names is open only closes the list)
    expect(page.locator("form.name-form")).to_have_count(forms - 1)
    page.get_by_role("link", name="Alice Example", exact=True).first.click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces + size)


def test_are_these_the_same_person(page: Page, live_server):
    """A person split in two is asked about on /review, side by side;
    "Different people" is remembered and undoable, "Same person" merges."""
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").click()
    first = page.locator("section.cluster:has(form.name-form)").first
    first.get_by_label("Name").fill("Alice Example")
    first.get_by_label("Name").press("Enter")  # (a click on Save while the list of names is open only closes it)
    page.get_by_role("status").get_by_role("link", name="Alice Example").click()
    page.get_by_label(re.compile(r"Select the face in ")).first.check()
    page.get_by_label("or a new person").fill("Alice Again")
    page.get_by_label("or a new person").press("Enter")  # Enter there moves (the form's default button)
    expect(page.get_by_role("status")).to_contain_text("Made 1 face the new person Alice Again")
    page.get_by_role("link", name="Review", exact=True).click()
    pair = page.locator("[data-pair]").filter(has_text="Alice Again")
    expect(pair).to_have_count(1)
    expect(pair.locator("[data-face-id]")).to_have_count(3)
    check_accessibility(page, "review")
    page.set_viewport_size({"width": 390, "height": 844})
    check_accessibility(page, "review-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    pair.get_by_role("button", name="Different people").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Remembered: different people"))
    expect(page.locator("[data-pair]").filter(has_text="Alice Again")).to_have_count(0)
    page.get_by_role("status").get_by_role("button", name="Undo").click()
    pair = page.locator("[data-pair]").filter(has_text="Alice Again")
    expect(pair).to_have_count(1)
    pair.get_by_role("button", name="Same person").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Merged Alice Again into Alice Example."))


def test_a_missed_face_is_drawn_on_its_photo(page: Page, live_server):
    """Open "Add a face the detector missed", drag a box on the photo, say
    who it is and add it: the photo shows one more face, named; Undo takes
    it back."""
    page.goto(live_server.url + "/faces/1")  # a face leads to its photo
    boxes = page.locator("svg.photo rect.box")
    found = boxes.count()
    page.get_by_text("Add a face the detector missed").click()
    page.locator("svg.photo").scroll_into_view_if_needed()
    photo = page.locator("svg.photo").bounding_box()
    page.mouse.move(photo["x"] + 4, photo["y"] + 4)
    page.mouse.down()
    page.mouse.move(photo["x"] + photo["width"] * 0.2, photo["y"] + photo["height"] * 0.25, steps=5)
    page.mouse.up()
    expect(page.locator("svg.photo rect.drawn-box")).to_be_visible()
    assert int(page.get_by_label("Width").input_value()) > 10
    expect(page.get_by_label("Who is it? (optional)")).to_be_focused()
    page.get_by_label("Who is it? (optional)").fill("Zoe Drawn")
    page.get_by_role("button", name="Add this face").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Added the face you drew to the index: made 1 face the new person Zoe Drawn.")
    expect(boxes).to_have_count(found + 1)
    check_accessibility(page, "photo-drawn")
    page.set_viewport_size({"width": 390, "height": 844})
    check_accessibility(page, "photo-drawn-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_have_text("Took back the face you drew: it is no longer in the index.")
    expect(page.get_by_role("status").get_by_role("button")).to_have_count(0)
    expect(boxes).to_have_count(found)


def test_every_page_at_390_and_1280_px(page: Page, live_server):
    """Every page, axe-checked at both widths, and nothing wider than a
    390 px phone screen (no sideways scrolling)."""
    page.goto(live_server.url + "/people")
    page.get_by_role("button", name="Cluster faces").click()
    page.locator("section.cluster:has(form.name-form)").first.get_by_label("Name").fill("Alice Example")
    page.locator("section.cluster:has(form.name-form)").first.get_by_role("button", name="Save").click()
    person = page.get_by_role("link", name="Alice Example", exact=True).first.get_attribute("href")
    cluster = page.locator("a.group").first.get_attribute("href")
    page.goto(live_server.url + "/faces/1")
    photo = page.url.removeprefix(live_server.url).split("#")[0]
    pages = {"search": "/", "search-face": "/?face_id=1", "recall": "/recall", "people": "/people",
             "person": person, "cluster": cluster, "photo": photo, "review": "/review", "index": "/index",
             "why": "/faces/1/why", "compare": "/compare/1/2", "lookalikes": f"{person}/lookalikes",
             "likeness": "/lookalikes"}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 844})
        for name, path in pages.items():
            page.goto(live_server.url + path)
            check_accessibility(page, f"all-{name}-{width}")
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{path} is {wide} px wide at {width} px"


def test_the_trade_follows_the_distance(page: Page, live_server):
    """Typing a maximum distance updates the expected precision and recall beside it (app.js)."""
    for path in ("/", "/recall"):
        page.goto(live_server.url + path)
        line = page.locator(".tradeoff output")
        expect(line).to_contain_text("Within ")
        page.get_by_label("Maximum distance").fill("0.40")
        expect(line).to_contain_text("Within 0.40: about")
        page.get_by_label("Maximum distance").fill("0.70")
        expect(line).to_contain_text("Within 0.70: about")
        page.get_by_text("Expected precision and recall by distance").click()
        expect(page.locator(".tradeoff table tbody tr")).to_have_count(8)
