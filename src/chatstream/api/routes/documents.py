"""Documents: upload (also at the seed's /file/upload), list, chunks, delete, search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from chatstream.api.deps import CurrentUser, ServicesDep
from chatstream.api.envelope import ok
from chatstream.errors import InvalidParams
from chatstream.schemas.documents import ChunkPublic, DocumentPublic, SearchBody
from chatstream.stores.models import Document

router = APIRouter(tags=["documents"])
UPLOAD_PATHS = ("/AI/documents", "/file/upload")


def document_wire(document: Document) -> dict[str, Any]:
    return DocumentPublic.model_validate(document).model_dump(mode="json")


async def _upload(
    user: CurrentUser, services: ServicesDep, file: UploadFile, session_id: str | None
) -> JSONResponse:
    if session_id is not None and ("\x00" in session_id or not 0 < len(session_id) <= 64):
        raise InvalidParams("field 'sessionId' is not a session id")
    data = await file.read()
    document, created = await services.documents.upload(
        user.user_id, file.filename or "document", data, session_id
    )
    response = ok(document=document_wire(document))
    response.status_code = 202 if created else 200  # 202: accepted, indexing follows
    return response


@router.post("/AI/documents")
async def upload(
    user: CurrentUser,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description=".md .txt .pdf .docx .html")],
    session_id: Annotated[str | None, Form(alias="sessionId")] = None,
) -> JSONResponse:
    """Upload a document (multipart field `file`); it is indexed in the background.

    With `sessionId` it serves that session only. The same bytes uploaded again answer
    200 with the existing document; a new one answers 202 with status `queued`.
    """
    return await _upload(user, services, file, session_id)


@router.post("/file/upload")
async def upload_seed(
    user: CurrentUser,
    services: ServicesDep,
    file: Annotated[UploadFile, File()],
    session_id: Annotated[str | None, Form(alias="sessionId")] = None,
) -> JSONResponse:
    """The seed's upload route: the same as POST /AI/documents."""
    return await _upload(user, services, file, session_id)


@router.get("/AI/documents")
async def list_documents(user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Your documents, newest first, with status (queued, indexing, ready, failed) and progress."""
    found = await services.documents.list(user.user_id)
    return ok(documents=[document_wire(d) for d in found])


@router.post("/AI/documents/search")
async def search(body: SearchBody, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """The passages of your documents that best match `query`: what a document answer would cite."""
    if body.session_id is not None:
        await services.chats.require(user.user_id, body.session_id)
    found = await services.retrieval.retrieve(
        user.user_id, body.session_id, body.query, k=body.k, mode=body.mode
    )
    extra = {"note": found.note} if found.note else {}
    return ok(results=[s.wire() for s in found.sources], **extra)


@router.get("/AI/documents/{document_id}")
async def get_document(document_id: str, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """One document's status."""
    return ok(document=document_wire(await services.documents.get(user.user_id, document_id)))


@router.get("/AI/documents/{document_id}/chunks")
async def chunks(document_id: str, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """A document's passages, in order, with their section paths."""
    found = await services.documents.chunks(user.user_id, document_id)
    return ok(chunks=[ChunkPublic.model_validate(c).model_dump(mode="json") for c in found])


@router.delete("/AI/documents/{document_id}")
async def delete(document_id: str, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Delete a document with its passages and their vectors."""
    await services.documents.delete(user.user_id, document_id)
    return ok()
