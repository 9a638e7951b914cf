"""The harmcast BentoML service: only the approved model's forecasts, with its card.

At start it refuses (``NotApproved``, the server exits) unless the stored
snapshot hashes to the registry's ``harmcast.snapshot_sha256`` (to the BentoML
model's metadata when the registry is unreachable; the two must agree when
both are read), the stored approval record is approved and gate-passed, the
stored card hashes to the recorded ``harmcast.card_sha256`` and, when
``HARMCAST_TRACKING_URI`` points at a reachable registry, the version still
holds ``production`` there. Any other start-up error is printed and raised as
``StartupRefused`` with its cause (:func:`serving.store.refusing_to_start`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from serving.auth import (
    CARD_READERS,
    OPERATOR,
    PLANNER,
    PUBLIC,
    AccessControl,
    RouteTable,
    allow,
    protected_paths,
    service_routes,
)
from serving.briefing.web import BriefingPages
from serving.metrics import METRICS_CONTENT_TYPE, RouteMetrics, render_metrics
from serving.openapi import SnapshotScope, TruthfulOpenAPI
from serving.query import ForecastIndex
from serving.rejections import JsonBodiesOnly, rejection_response
from serving.schemas import ForecastRequest, RequestError
from serving.store import TRACKING_URI_ENV, bento_model_tag, refusing_to_start, startup_bundle
from training.config import load_params

__all__ = ["HarmcastForecast"]

# a child of "bentoml" so that bentoml serve prints it with its own records
logger = logging.getLogger("bentoml.harmcast")
#: the params.yaml whose ``serving:`` section applies (set by ``harmcast serve``)
PARAMS_ENV = "HARMCAST_PARAMS"
JSON = "application/json"
pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


#: weeks ahead as digits only: "0.0" or "2.5" is a 422, never read as a horizon
HorizonQuery = Annotated[str | None, Query(pattern=r"^[1-9][0-9]?$")]


def _horizon(value: str | None) -> int | None:
    return None if value is None else int(value)


def _document(media_type: str, kind: str) -> dict[int, dict]:
    """Return the OpenAPI entry of a download: its real content type, not JSON."""
    return {200: {"content": {media_type: {"schema": {"type": kind}}}, "description": "OK"}}


@bentoml.asgi_app(pages, path="/")
# two workers: one per core of the target machine; each holds its own prebuilt index
# BentoML's own metrics label raw paths (unbounded): serving.metrics replaces them
@bentoml.service(
    name="harmcast-forecast", workers=2, traffic={"timeout": 30}, metrics={"enabled": False}
)
class HarmcastForecast:
    """Weekly violence forecasts per area, from the approved model's snapshot."""

    with refusing_to_start():
        model = bentoml.models.BentoModel(bento_model_tag())

    def __init__(self) -> None:
        self.bundle, checked = startup_bundle(Path(self.model.path))
        self.index = ForecastIndex(self.bundle.snapshot)
        self.pages = BriefingPages(
            self.bundle,
            Path(self.model.path) / "snapshot",
            _SERVING,
        )
        approval = self.bundle.approval
        logger.info(
            "serving %s version %s (card sha256 %s, origin week %s); registry check: %s",
            approval["name"],
            approval["version"],
            self.bundle.card_sha256,
            self.index.meta.origin_week,
            "passed" if checked else f"skipped ({TRACKING_URI_ENV} unset or unreachable)",
        )

    def _answer(self, method: str, request: dict[str, Any]) -> Response:
        # BentoML validated the body against ForecastRequest already: construct, not re-validate
        try:
            body = getattr(self.index, method)(ForecastRequest.model_construct(**request))
        except RequestError as exc:
            # the same shape as BentoML's 400 for a pydantic error (serving.rejections)
            return rejection_response(str(exc), kind="request_error")
        # prebuilt JSON fragments, returned as is: no per-object serialisation of big answers
        return Response(body, media_type=JSON)

    # async: the answer is a lookup and a bytes join, cheaper than a hop to a worker thread
    @bentoml.api(input_spec=ForecastRequest)
    @allow(PLANNER)
    async def forecast(self, **request: Any) -> dict[str, Any]:
        """Return expected counts, intervals, P(>=1), ranks and hotspot flags per area."""
        return self._answer("answer_json", request)

    @bentoml.api(input_spec=ForecastRequest)
    @allow(PLANNER)
    async def forecast_geojson(self, **request: Any) -> dict[str, Any]:
        """Return the forecasts as a GeoJSON FeatureCollection of area centroids."""
        return self._answer("answer_geojson_json", request)

    @pages.get("/model_card")
    @allow(CARD_READERS)
    def model_card(self) -> dict[str, Any]:
        """Return the published model card (card.json) of the served version."""
        return self.bundle.card

    @pages.get("/model_card.html", response_class=HTMLResponse)
    @allow(CARD_READERS)
    def model_card_html(self) -> str:
        """Return the published model card as HTML."""
        return self.bundle.card_html

    @pages.get("/areas")
    @allow(PLANNER)
    def areas(self) -> list[dict[str, Any]]:
        """Area codes, names and districts the service forecasts."""
        return self.index.areas

    # the briefing's pages and downloads are for browsers: not in the API document
    # (the API is /forecast, /forecast_geojson, /areas and the card)
    @pages.get("/", response_class=HTMLResponse, include_in_schema=False)
    @allow(PLANNER)
    def briefing(
        self,
        horizon: int | None = None,
        district: str | None = None,
        area: str | None = None,
        show: str | None = Query(None, alias="list"),
    ) -> Response:
        """Return the planner's weekly briefing: map, ranked list, an area's detail."""
        return self.pages.briefing(horizon, district, area, show_all=show == "all")

    @pages.get(
        "/briefing.csv",
        response_class=Response,
        responses=_document("text/csv", "string"),
        include_in_schema=False,
    )
    @allow(PLANNER)
    def briefing_csv(
        self,
        horizon: HorizonQuery = None,
        district: str | None = None,
        show: str | None = Query(None, alias="list"),
    ) -> Response:
        """Return the briefing's list as CSV (flagged areas, or every area with list=all)."""
        return self.pages.csv(_horizon(horizon), district, show_all=show == "all")

    @pages.get(
        "/briefing.geojson",
        response_class=Response,
        responses=_document("application/geo+json", "object"),
        include_in_schema=False,
    )
    @allow(PLANNER)
    def briefing_geojson(self, horizon: HorizonQuery = None, district: str | None = None):
        """Every area's forecast as GeoJSON, with polygons when boundaries are known."""
        return self.pages.geojson(_horizon(horizon), district)

    @pages.get("/briefing/static/{name}", include_in_schema=False)
    @allow(PUBLIC)
    def briefing_static(self, name: str) -> Response:
        """Return the briefing's stylesheets and script (packaged, no CDN)."""
        return self.pages.static(name)

    @pages.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    @allow(PUBLIC)
    def signin_form(self) -> Response:
        """Return the planner's sign-in form."""
        return self.pages.signin_form()

    @pages.post("/signin", include_in_schema=False)
    @allow(PUBLIC)
    async def signin(self, request: Request) -> Response:
        """Check the planner credential; set the session cookie or refuse clearly."""
        return await self.pages.signin(request)

    @pages.post("/signout", include_in_schema=False)
    @allow(PUBLIC)
    def signout(self, request: Request) -> Response:
        """End the browser session."""
        return self.pages.signout(request)

    @pages.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    @allow(PUBLIC)
    def docs(self) -> Response:
        """Return the API's Swagger page (BentoML's packaged Swagger UI, no tracking script)."""
        return self.pages.docs()

    @pages.get("/metrics")
    @allow(OPERATOR)
    def metrics(self) -> Response:
        """Request counts and durations by route template (every worker)."""
        return Response(render_metrics(), media_type=METRICS_CONTENT_TYPE)


# A side effect at import, on purpose: `bentoml serve` restarts a worker whose __init__
# raises, forever, so only a check here makes `bentoml serve`/`build` exit 1 unbound.
with refusing_to_start():
    _bundle, _ = startup_bundle(Path(HarmcastForecast.models[0].resolve().path))
    _SERVING = load_params(os.environ.get(PARAMS_ENV) or None).serving

# the first middleware added is the outer one: metrics count refusals too, and no
# body is read before the caller's role is known
_ROUTES = service_routes(HarmcastForecast)
_API_PATHS = ("/forecast", "/forecast_geojson")
HarmcastForecast.add_asgi_middleware(RouteMetrics, table=RouteTable({t: ["_"] for t in _ROUTES}))
HarmcastForecast.add_asgi_middleware(AccessControl, routes=_ROUTES, params=_SERVING)
HarmcastForecast.add_asgi_middleware(JsonBodiesOnly, paths=_API_PATHS)
HarmcastForecast.add_asgi_middleware(
    TruthfulOpenAPI,
    protected=protected_paths(_ROUTES, _SERVING),
    api_paths=_API_PATHS,
    scope=SnapshotScope.of(_bundle.snapshot.frame),
)
