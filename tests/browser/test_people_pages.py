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
    page.get_by_label(re.compile(r"Select face \d+")).first.check()
    page.get_by_role("button", name="Not this person").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 1)
    # Moved to Bob: the face leaves this page too.
    page.get_by_label(re.compile(r"Select face \d+")).first.check()
    page.get_by_label("Move to").select_option(label="Bob Example")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 2)
    # Merge with Bob, then undo it.
    page.get_by_label("Merge with").select_option(label="Bob Example")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("button", name="Undo merge")).to_be_visible()
    merged = page.locator("ul.grid [data-face-id]").count()
    assert merged > first_faces - 1
    page.get_by_role("button", name="Undo merge").click()
    expect(page.locator("ul.grid [data-face-id]")).to_have_count(first_faces - 2)
    page.goto(live_server.url + "/people")
    expect(page.locator("a.person", has_text="Bob Example").first).to_be_visible()


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
