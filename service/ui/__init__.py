"""The web pages: server-rendered Jinja templates with small htmx partials,
served by the same app as the API and calling the same service functions
(never the API over HTTP). Every page works as a plain form without
JavaScript; htmx (vendored, ``static/vendor``) only swaps the results in.
``service.ui.security`` signs people in and sets the headers; the people
pages are ``service.ui.people_pages``, the sightings ``service.ui.sightings``,
naming a face where it is shown ``service.ui.naming``; every action answers
on its page (``service.ui.actions``)."""

from service.ui import (  # noqa: F401  (their routes join the blueprint)
    actions,
    explain_pages,
    index_page,
    naming,
    people_pages,
    review_page,
    sightings,
)
from service.ui.views import bp

__all__ = ["bp"]
