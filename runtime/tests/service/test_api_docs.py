"""The API's documentation: none in production; in development, pages that load nothing
from another site."""

from html.parser import HTMLParser

import pytest
from httpx import ASGITransport, AsyncClient
from in_process import settings_for
from probe.factory import create_app
from sqlalchemy.engine import URL

DOCUMENTS = ["/openapi.json", "/docs", "/redoc"]
PAGES = ["/docs", "/redoc"]


def client_of(database_url: URL, environment: str) -> AsyncClient:
    """A client of the probe app (no lifespan: these pages never touch the database)."""
    app = create_app(settings_for(database_url, environment=environment))
    return AsyncClient(transport=ASGITransport(app), base_url="http://test")


class Assets(HTMLParser):
    """The URLs a page loads by itself: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag in ("script", "img") else named.get("href")
        if tag in ("script", "img", "link") and url:
            self.urls.append(url)


def assets_of(page: str) -> list[str]:
    parser = Assets()
    parser.feed(page)
    return parser.urls


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_production_serves_no_documentation(database_url: URL, path: str) -> None:
    async with client_of(database_url, "production") as client:
        response = await client.get(path)

    assert response.status_code == 404


async def test_production_still_builds_the_document_in_process(database_url: URL) -> None:
    # What the fuzz tests and a client generator read: app.openapi(), no route needed.
    app = create_app(settings_for(database_url))

    assert "/probes" in app.openapi()["paths"]


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_development_serves_the_documentation(database_url: URL, path: str) -> None:
    async with client_of(database_url, "development") as client:
        response = await client.get(path)

    assert response.status_code == 200
    if path == "/openapi.json":
        assert "/probes" in response.json()["paths"]


@pytest.mark.parametrize("path", PAGES)
async def test_the_pages_load_every_asset_from_the_app_itself(database_url: URL, path: str) -> None:
    async with client_of(database_url, "development") as client:
        page = (await client.get(path)).text
        assets = assets_of(page)
        loaded = {url: await client.get(url) for url in assets}

    assert any(url.endswith(".js") for url in assets), page
    # Paths on this app: no CDN, no other site, whatever the scheme.
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    assert "cdn" not in page.lower()
    assert "://" not in page  # no absolute URL at all
    assert {url: answer.status_code for url, answer in loaded.items()} == dict.fromkeys(assets, 200)
    scripts = [loaded[url] for url in assets if url.endswith(".js")]
    assert all("javascript" in answer.headers["content-type"] for answer in scripts)
