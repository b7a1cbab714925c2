"""WildDuck clients unchanged: message behaviours a WildDuck client relies on, through the real
API and the real (embedded) database."""

from __future__ import annotations

from conftest import Api
from message_samples import PNG, fetch, html_with_image, mailbox_ids, mixed, new_user, upload_raw


def message_path(user: str, mailbox: str, uid: int) -> str:
    return f"/users/{user}/mailboxes/{mailbox}/messages/{uid}"


async def test_attachment_download_keeps_the_stored_disposition(api: Api) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    related = await upload_raw(api, user, inbox, html_with_image(1, "w", "Inline"))
    status, headers, content = await fetch(
        api, message_path(user, inbox, related) + "/attachments/ATT00001"
    )
    assert (status, content) == (200, PNG)
    assert headers["Content-Disposition"].startswith('inline; filename="logo.png"')

    attached = await upload_raw(
        api, user, inbox, mixed(2, "w", "Attached", [("a.bin", "application/octet-stream", b"x")])
    )
    status, headers, _ = await fetch(
        api, message_path(user, inbox, attached) + "/attachments/ATT00001"
    )
    assert status == 200
    assert headers["Content-Disposition"].startswith('attachment; filename="a.bin"')
