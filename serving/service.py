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
from typing import Any

import bentoml
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from serving.auth import BearerAuth, access_rules
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


@bentoml.asgi_app(pages, path="/")
# two workers: one per core of the target machine; each holds its own prebuilt index
@bentoml.service(name="harmcast-forecast", workers=2, traffic={"timeout": 30})
class HarmcastForecast:
    """Weekly violence forecasts per area, from the approved model's snapshot."""

    with refusing_to_start():
        model = bentoml.models.BentoModel(bento_model_tag())

    def __init__(self) -> None:
        self.bundle, checked = startup_bundle(Path(self.model.path))
        self.index = ForecastIndex(self.bundle.snapshot)
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
    async def forecast(self, **request: Any) -> dict[str, Any]:
        """Return expected counts, intervals, P(>=1), ranks and hotspot flags per area."""
        return self._answer("answer_json", request)

    @bentoml.api(input_spec=ForecastRequest)
    async def forecast_geojson(self, **request: Any) -> dict[str, Any]:
        """Return the forecasts as a GeoJSON FeatureCollection of area centroids."""
        return self._answer("answer_geojson_json", request)

    @pages.get("/model_card")
    def model_card(self) -> dict[str, Any]:
        """Return the published model card (card.json) of the served version."""
        return self.bundle.card

    @pages.get("/model_card.html", response_class=HTMLResponse)
    def model_card_html(self) -> str:
        """Return the published model card as HTML."""
        return self.bundle.card_html

    @pages.get("/areas")
    def areas(self) -> list[dict[str, Any]]:
        """Area codes, names and districts the service forecasts."""
        return self.index.areas


# A side effect at import, on purpose: `bentoml serve` restarts a worker whose __init__
# raises, forever, so only a check here makes `bentoml serve`/`build` exit 1 unbound.
with refusing_to_start():
    _bundle, _ = startup_bundle(Path(HarmcastForecast.models[0].resolve().path))
    _serving_params = load_params(os.environ.get(PARAMS_ENV) or None).serving

_API_PATHS = ("/forecast", "/forecast_geojson")
HarmcastForecast.add_asgi_middleware(JsonBodiesOnly, paths=_API_PATHS)
HarmcastForecast.add_asgi_middleware(
    TruthfulOpenAPI,
    protected=access_rules(_serving_params),
    api_paths=_API_PATHS,
    scope=SnapshotScope.of(_bundle.snapshot.frame),
)
HarmcastForecast.add_asgi_middleware(BearerAuth, params=_serving_params)
