"""zlib with preset dictionaries: how small stored pieces of a message compress well.

A typical message document holds a few small compressed pieces (the header block, the body
without its attachments, the IMAP view). Alone, each one pays for the first occurrence of every
string it contains; a preset dictionary (zlib's `zdict`) lets it refer to strings it does not
contain instead:

- `MAIL_DICTIONARY`, fixed: header names and values, MIME and HTML boilerplate, the keys of the
  stored MIME tree and IMAP BODYSTRUCTURE fragments, as most mail has them;
- the message's own search text (`text`, stored plain in the same document for the database
  to search), after it for the body: the raw text and HTML parts then mostly refer to it
  rather than spelling the words out a second time.

A zlib stream made with a dictionary records the dictionary's Adler-32; decompressing with any
other dictionary fails rather than returning wrong bytes, and a stream made without one
decompresses whether or not a dictionary is offered.
"""

from __future__ import annotations

import zlib

#: zlib level for stored pieces: 6 compresses a typical 4 KB message in about 0.1 ms
ZLIB_LEVEL = 6
#: zlib reaches back at most this far, into the dictionary too (it is placed before the data)
WINDOW = 32 * 1024

# NEVER EDIT: stored pieces can only be decompressed with exactly these bytes (a test pins
# their SHA-256). Another dictionary would need a new marker in the stored formats.
MAIL_DICTIONARY = (
    b"Return-Path: <>\r\nDelivered-To: \r\nX-Original-To: \r\nReceived: from  ([])\r\n"
    b"\tby  with ESMTPS id ; \r\n\tfor <>; \r\nReceived: by  with SMTP id ; \r\n"
    b"ARC-Seal: i=1; a=rsa-sha256; t=; cv=none; d=; s=arc-; b=\r\n"
    b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=; s=arc-; h=; bh=; b=\r\n"
    b"ARC-Authentication-Results: i=1; mx.; spf=pass smtp.mailfrom=; dkim=pass header.i=@;\r\n"
    b"Authentication-Results: ; dkim=pass header.d= header.s= header.b=; spf=pass (: domain of "
    b" designates  as permitted sender) smtp.mailfrom=; dmarc=pass (p=NONE sp=NONE dis=NONE) "
    b"header.from=\r\nReceived-SPF: pass (: domain of  designates  as permitted sender) "
    b"client-ip=;\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=; s=; t=; "
    b"h=from:to:subject:date:message-id:mime-version:content-type; bh=; b=\r\n"
    b"X-Google-DKIM-Signature: \r\nX-Gm-Message-State: \r\nX-Google-Smtp-Source: \r\n"
    b"X-Received: by  with SMTP id ; \r\nX-Spam-Status: No, score= required= tests=\r\n"
    b"X-Spam-Score: \r\nX-Mailer: \r\nUser-Agent: Mozilla/5.0 \r\nFeedback-ID: \r\n"
    b"List-Unsubscribe: <mailto:?subject=unsubscribe>, <https://>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nList-Id: <>\r\nPrecedence: bulk\r\n"
    b"Thread-Topic: \r\nThread-Index: \r\nAccept-Language: en-US\r\nContent-Language: en-US\r\n"
    b"X-MS-Has-Attach: yes\r\nX-MS-TNEF-Correlator: \r\nX-Priority: 3\r\nImportance: Normal\r\n"
    b"Organization: \r\nSender: \r\nReply-To: \r\nIn-Reply-To: <>\r\nReferences: <> <>\r\n"
    b'From: "" <>\r\nTo: "" <>, <>\r\nCc: \r\nBcc: \r\nSubject: Re: Fwd: \r\n'
    b"Date: Mon, Tue, Wed, Thu, Fri, Sat, Sun,  Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec "
    b"+0000 (UTC) +0100 +0200 -0400 -0500 -0700 (GMT) (CET) (PST) (EDT)\r\n"
    b"Message-ID: <@mail.gmail.com> <@.outlook.com> <@.prod.outlook.com>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=""\r\n'
    b'Content-Type: multipart/alternative; boundary=""\r\n'
    b'Content-Type: multipart/related; boundary=""; type="text/html"\r\n\r\n'
    b"This is a multi-part message in MIME format.\r\n\r\n--\r\n"
    b'Content-Type: text/plain; charset="UTF-8"\r\nContent-Type: text/plain; charset=utf-8; '
    b"format=flowed\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    b'Content-Type: text/plain; charset="iso-8859-1"\r\nContent-Transfer-Encoding: 7bit\r\n'
    b"Content-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b'Content-Type: text/html; charset="UTF-8"\r\nContent-Type: text/html; charset=utf-8\r\n'
    b'Content-Type: application/pdf; name=""\r\nContent-Type: application/octet-stream; name=""\r\n'
    b'Content-Type: image/png; name=""\r\nContent-Type: image/jpeg; name=""\r\n'
    b'Content-Disposition: attachment; filename=""\r\nContent-Disposition: inline; filename=""\r\n'
    b"Content-Transfer-Encoding: base64\r\nContent-ID: <>\r\nX-Attachment-Id: \r\n\r\n"
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" '
    b'content="text/html; charset=utf-8"><meta name="viewport" content="width=device-width, '
    b'initial-scale=1"><style type="text/css"></style></head><body><div dir="ltr"><div><br>'
    b'</div></div><p></p><span style=""></span><a href="https://" target="_blank"></a>'
    b'<img src="cid:" alt="" width="" height="" border="0"><table width="100%" cellpadding="0" '
    b'cellspacing="0" border="0" role="presentation"><tr><td align="center" valign="top" '
    b'style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #000000;">'
    b'</td></tr></table><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
    b'border-left:1px solid rgb(204,204,204);padding-left:1ex">&nbsp;</blockquote>'
    b"</body></html>\r\n=20\r\n=3D\r\n"
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit"  NIL NIL NIL NIL)("text" "html" '
    b'("charset" "utf-8") NIL NIL "quoted-printable"  NIL NIL NIL NIL) "alternative" '
    b'("boundary" "") NIL NIL NIL)("application" "pdf" ("name" "") NIL NIL "base64"  NIL '
    b'("attachment" ("filename" "")) NIL NIL) "mixed" ("boundary" "") NIL NIL NIL)'
    b'(NIL "" ((NIL NIL "" "")) ((NIL NIL "" "")) ((NIL NIL "" "")) ((NIL NIL "" "")) NIL NIL '
    b'NIL "<>")'
    b'{"path":"1","depth":1,"header_start":,"header_end":,"body_start":,"body_end":,'
    b'"content_type":"text/plain","type_raw":"text","subtype_raw":"plain",'
    b'"params":{"charset":"utf-8"},"raw_params":[["charset","utf-8"]],'
    b'"disposition":"attachment","disposition_raw":"attachment",'
    b'"disposition_params":{"filename":""},"disposition_raw_params":[["filename",""]],'
    b'"transfer_encoding":"base64","transfer_encoding_raw":"base64","content_id":"<>",'
    b'"lines":0,"opaque":false,"headers":[["Content-Type",,,],'
    b'["Content-Transfer-Encoding",,,]],"children":[{"path":"","depth":0,"header_start":0,'
    b'"header_end":,"body_start":,"body_end":,"content_type":"multipart/alternative",'
    b'"type_raw":"multipart","subtype_raw":"alternative","params":{"boundary":""},'
    b'"raw_params":[["boundary",""]],"disposition_params":{},"disposition_raw_params":[],'
    b'"transfer_encoding":"7bit","transfer_encoding_raw":"7bit","lines":0,"opaque":false,'
    b'"headers":[["From",,,],["To",,,],["Subject",,,],["Date",,,],["Message-ID",,,],'
    b'["MIME-Version",,,],["Content-Type",,,]]'
)


def compress(data: bytes, dictionary: bytes = b"") -> bytes:
    """`data` as a zlib stream, made with the preset `dictionary` when one is given."""
    if not dictionary:
        return zlib.compress(data, ZLIB_LEVEL)
    packer = zlib.compressobj(ZLIB_LEVEL, zdict=dictionary)
    return packer.compress(data) + packer.flush()


def decompress(data: bytes, dictionary: bytes = b"") -> bytes:
    """The bytes of a zlib stream; `dictionary` must be the one it was made with, if any."""
    if not dictionary:
        return zlib.decompress(data)
    unpacker = zlib.decompressobj(zdict=dictionary)
    return unpacker.decompress(data) + unpacker.flush()


def text_dictionary(text: str, length: int) -> bytes:
    """`MAIL_DICTIONARY` followed by the first `length` bytes of `text` in UTF-8: the preset
    dictionary of a body piece whose segment records `length` (segments.py)."""
    # a character is at least one byte: `length` characters encode to at least `length` bytes
    return MAIL_DICTIONARY + text[:length].encode("utf-8")[:length]
