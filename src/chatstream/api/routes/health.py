"""Liveness, readiness and the public configuration a client needs before logging in."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from chatstream import __version__
from chatstream.api.deps import ServicesDep
from chatstream.api.envelope import failure, ok

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up."""
    return ok(status="up")


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """The database (and Redis, when configured) answer; says whether a model is configured and
    what state each local model is in."""
    state = await services.ready()
    down = [f"{name} {state[name]}" for name in ("database", "redis") if state.get(name, "ok") != "ok"]
    checks: dict[str, object] = dict(state)
    local = services.models.local_states_described()
    if local:
        # A local model that crashed does not make the instance unready: it restarts on the
        # next request, and the other models still answer. Its state is here to see.
        checks["localModels"] = local
    if down:
        return failure(4001, 503, "not ready: " + ", ".join(down), checks=checks)
    return ok(status="ready", checks=checks)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Prometheus text format: answers in flight and ended, chunks relayed, local models' queues,
    processes and states, Redis reachability."""
    answers = services.answers
    lines = [
        "# HELP chatstream_answers_running Answers being written on this instance.",
        "# TYPE chatstream_answers_running gauge",
        f"chatstream_answers_running {answers.running}",
        "# HELP chatstream_answers_ended_total Answers ended on this instance, by final status.",
        "# TYPE chatstream_answers_ended_total counter",
        *(
            f'chatstream_answers_ended_total{{status="{k}"}} {v}'
            for k, v in sorted(answers.ended_by_status.items())
        ),
        "# HELP chatstream_answer_chunks_total Model chunks relayed by answers that ended.",
        "# TYPE chatstream_answer_chunks_total counter",
        f"chatstream_answer_chunks_total {answers.chunks_relayed}",
    ]
    local = services.models.local_stats().items()
    if local:
        lines += [
            "# HELP chatstream_local_model_running Answers a local model is computing now.",
            "# TYPE chatstream_local_model_running gauge",
            *(f'chatstream_local_model_running{{model="{i}"}} {s["running"]}' for i, s in local),
            "# HELP chatstream_local_model_waiting Answers waiting for a free copy of a local model.",
            "# TYPE chatstream_local_model_waiting gauge",
            *(f'chatstream_local_model_waiting{{model="{i}"}} {s["waiting"]}' for i, s in local),
            "# HELP chatstream_local_model_tokens_total Tokens a local model has generated.",
            "# TYPE chatstream_local_model_tokens_total counter",
            *(f'chatstream_local_model_tokens_total{{model="{i}"}} {s["tokens"]}' for i, s in local),
            "# HELP chatstream_local_model_processes Child processes a local model runs now.",
            "# TYPE chatstream_local_model_processes gauge",
            *(f'chatstream_local_model_processes{{model="{i}"}} {s["processes"]}' for i, s in local),
            "# HELP chatstream_local_model_crashes_total Local model processes that stopped unexpectedly.",
            "# TYPE chatstream_local_model_crashes_total counter",
            *(f'chatstream_local_model_crashes_total{{model="{i}"}} {s["crashes"]}' for i, s in local),
            "# HELP chatstream_local_model_restarts_total Processes started to replace one that crashed.",
            "# TYPE chatstream_local_model_restarts_total counter",
            *(f'chatstream_local_model_restarts_total{{model="{i}"}} {s["restarts"]}' for i, s in local),
            "# HELP chatstream_local_model_state A local model's state: 1 for the one it is in.",
            "# TYPE chatstream_local_model_state gauge",
            *(
                f'chatstream_local_model_state{{model="{i}",state="{state.replace(" ", "_")}"}} '
                f"{int(s['state'] == state)}"
                for i, s in local
                for state in services.models.local_states
            ),
        ]
    ingestion = services.ingestion
    lines += [
        "# HELP chatstream_document_chunks_indexed_total Passages this instance has indexed.",
        "# TYPE chatstream_document_chunks_indexed_total counter",
        f"chatstream_document_chunks_indexed_total {ingestion.indexed_chunks}",
    ]
    if services.bus is not None:
        lines += [
            "# HELP chatstream_redis_up Whether Redis answered the last time it was used.",
            "# TYPE chatstream_redis_up gauge",
            f"chatstream_redis_up {int(services.bus.healthy)}",
        ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


@router.get("/config")
async def config(services: ServicesDep) -> JSONResponse:
    """What a client needs before login: whether registration asks for an e-mail code."""
    settings = services.settings
    return ok(
        version=__version__,
        emailVerification=settings.email_verification,
        documentMaxBytes=settings.document_max_bytes,
        documentTypes=[".md", ".markdown", ".txt", ".text", ".pdf", ".docx", ".html", ".htm"],
        documents=services.documents.unavailable is None,
    )
