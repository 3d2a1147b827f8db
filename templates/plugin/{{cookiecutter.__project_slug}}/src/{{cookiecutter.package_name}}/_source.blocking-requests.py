"""The export toolkit's ByteSource over a requests.Session (API-neutral plumbing).

``hypersdk.export.export_disk_image_blocking`` opens the disk image at byte offsets as
often as a download needs (resuming after a dropped connection); this is that opening.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypersdk import check_cancelled
from hypersdk.export import SourceResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests


class RequestsSource:
    """One streamed GET of ``url`` from any byte offset, within the caller's deadline."""

    def __init__(
        self,
        session: requests.Session,
        url: str,
        timeouts: Callable[[], tuple[float, float]],
    ) -> None:
        self._session, self._url, self._timeouts = session, url, timeouts

    def open(self, offset: int, validator: str | None) -> SourceResponse:
        """Ask for the object from ``offset`` (If-Range: the same object, or all of it)."""
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        check_cancelled()
        reply = self._session.get(self._url, headers=headers, stream=True, timeout=self._timeouts())
        return SourceResponse(
            status=reply.status_code,
            headers=reply.headers,
            chunks=self._chunks(reply),
            on_close=reply.close,
        )

    def _chunks(self, reply: requests.Response) -> Iterator[bytes]:
        for chunk in reply.iter_content(1 << 20):
            check_cancelled()  # a cancelled export stops between chunks
            yield chunk
