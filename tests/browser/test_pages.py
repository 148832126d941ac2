"""The web pages as a person uses them, in Chromium: by label and role,
with axe-core checking every page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from indexer.people.annotations import AnnotationsDB
from tests.browser.conftest import check_accessibility
from tests.helpers import DATA, lfw_photo

XSS = "<script>alert(1)</script>"


def no_dialogs(page: Page) -> list:
    """Every dialog the page opens (an injected alert() would be one)."""
    opened: list = []
    page.on("dialog", lambda dialog: (opened.append(dialog.message), dialog.dismiss()))
    return opened


def test_search_by_photo_end_to_end(page: Page, live_server):
    page.goto(live_server.url + "/")
    check_accessibility(page, "search-empty")
    page.get_by_label("Photo").set_input_files(str(DATA / "group" / "bbt3.jpg"))
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Faces in bbt3.jpg")).to_be_visible(timeout=30_000)
    expect(page.locator("svg.photo rect.box")).to_have_count(5)
    assert page.locator("#results [data-face-id]").count() >= 5
    check_accessibility(page, "search")
    # A match leads to its photo, where every face is boxed.
    page.get_by_label("Photo").set_input_files(str(lfw_photo("Tony_Blair", 2)))
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Faces in Tony_Blair_0002.jpg")).to_be_visible(timeout=30_000)
    first = page.locator("#results .matches li").first
    expect(first).to_contain_text("Tony_Blair_0002.jpg")
    first.locator("a.face").click()
    expect(page.get_by_role("heading", name="Tony_Blair_0002.jpg", exact=True)).to_be_visible()
    expect(page.locator("svg.photo rect.box")).to_have_count(1)
    check_accessibility(page, "photo")
    # "Search for this face" from the photo page.
    page.get_by_role("link", name="Search for this face").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Who looks like face \d+"))).to_be_visible()


def test_errors_reach_the_alert_region(page: Page, live_server, tmp_path):
    page.goto(live_server.url + "/")
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("these are notes, not a photo")
    page.get_by_label("Photo").set_input_files(str(not_a_photo))
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_contain_text("That file cannot be searched")
    page.get_by_label("Photo").set_input_files(str(DATA / "blank" / "white.png"))
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_contain_text("No face was found in that photo")


def test_a_name_that_is_markup_is_shown_as_text(page: Page, live_server):
    annotations = AnnotationsDB.open(live_server.data_dir)
    annotations.create_person(XSS, [1])
    annotations.close()
    opened = no_dialogs(page)
    page.goto(live_server.url + "/?face_id=1")
    expect(page.locator("#results [data-person-id]").first).to_have_text(XSS)
    assert opened == []


def test_the_index_page(page: Page, live_server):
    page.goto(live_server.url + "/index")
    expect(page.get_by_role("heading", name="Last reindex runs")).to_be_visible()
    check_accessibility(page, "index")


def test_signing_in_with_a_read_key_and_an_admin_key(page: Page, keyed_server):
    page.goto(keyed_server.url + "/index")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    check_accessibility(page, "login")
    page.get_by_label("API key").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill("read-key-00000001")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(keyed_server.url + "/index")
    expect(page.get_by_text("Read only")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("API key").fill("admin-key-0000001")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Administrator")).to_be_visible()


def test_sightings_with_a_filter_and_a_second_search(page: Page, live_server):
    page.goto(live_server.url + "/recall")
    page.get_by_label("Photo").set_input_files(str(lfw_photo("Colin_Powell", 1)))
    page.get_by_label("Camera folder").fill(str(DATA / "lfw" / "Colin_Powell"))
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"seen in \d+ files?"))).to_be_visible(timeout=30_000)
    sources = page.locator("#results section.source h3")
    assert sources.count() >= 1
    assert all("Colin_Powell" in text for text in sources.all_inner_texts())  # by folder
    check_accessibility(page, "recall")
    page.get_by_label(re.compile(r"Sure: the face in ")).first.check()
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    page.get_by_role("button", name="Search again with the sightings ticked").click()
    expect(page.locator("#results")).to_contain_text("Searched with 2 faces")


def test_an_upload_over_the_limit_is_refused_with_a_message(page: Page, live_data, tmp_path):
    """Refused in the page before sending; and when sent anyway (the check
    taken out of the page), the server's 413 reaches the alert region."""
    from config.settings import load_settings
    from service import create_app
    from tests.browser.conftest import serve

    big = tmp_path / "big.jpg"
    big.write_bytes((DATA / "lfw" / "Tony_Blair" / "Tony_Blair_0002.jpg").read_bytes() + b"\0" * 120_000)
    app = create_app(load_settings(data_dir=live_data, service={"max_upload_mb": 0.1}))
    for url in serve(app):
        page.goto(url + "/")
        expect(page.get_by_text("(up to 0.1 MiB)")).to_be_visible()
        requests = []
        page.on("request", lambda r, requests=requests: requests.append(r) if r.method == "POST" else None)
        page.get_by_label("Photo").set_input_files(str(big))
        expect(page.get_by_role("alert")).to_contain_text("big.jpg is 0.1 MiB: uploads are limited to 0.1 MiB")
        page.get_by_role("button", name="Search").click()
        assert not requests
        page.get_by_label("Photo").evaluate("field => { delete field.dataset.maxBytes; field.setCustomValidity(''); }")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("alert")).to_contain_text("larger than the limit of 0.1 MiB")
        assert len(requests) == 1
