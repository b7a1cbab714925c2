"""WildDuck clients unchanged: message behaviours a WildDuck client relies on, through the real
API and the real (embedded) database."""

from __future__ import annotations

import base64

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


async def test_a_special_use_mailbox_is_renamed_with_its_special_use(api: Api) -> None:
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    trash = boxes["\\Trash"]
    below = await api.post(f"/users/{user}/mailboxes", {"path": f"{_path_of(boxes, trash)}/Old"})
    assert below[0] == 200, below
    status, body = await api.put(f"/users/{user}/mailboxes/{trash}", {"path": "Bin"})
    assert (status, body) == (200, {"success": True})
    status, body = await api.get(f"/users/{user}/mailboxes/{trash}")
    assert status == 200, body
    assert (body["path"], body["specialUse"]) == ("Bin", "\\Trash")
    renamed = await mailbox_ids(api, user)
    assert renamed["\\Trash"] == renamed["Bin"] == trash
    assert renamed["Bin/Old"] == below[1]["id"]  # the mailboxes below move along


def _path_of(boxes: dict[str, str], ident: str) -> str:
    return next(path for path, value in boxes.items() if value == ident and "\\" not in path)


async def test_data_images_are_named_as_wildduck_names_them(api: Api) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    status, body = await api.post(
        f"/users/{user}/mailboxes/{inbox}/messages",
        {"subject": "Pictures", "html": f'<p><img src="{image}"> and <img src="{image}"></p>'},
    )
    assert status == 200, body
    status, body = await api.get(message_path(user, inbox, body["message"]["id"]))
    assert status == 200, body
    names = [(a["filename"], a["contentType"]) for a in body["attachments"]]
    assert names == [("attachment-1.png", "image/png"), ("attachment-2.png", "image/png")]
