"""Names of a new account's special-use folders, by the account's language.

WildDuck names the four special-use folders after the user's `language` (INBOX is always
`INBOX`, the name IMAP requires) and falls back to English for a language it does not know. The
names below are the ones mail clients in each language commonly show; `de-AT` or `pt_BR` use
their primary language.
"""

from __future__ import annotations

from collections.abc import Mapping

SENT, TRASH, JUNK, DRAFTS = "\\Sent", "\\Trash", "\\Junk", "\\Drafts"

#: language -> (Sent, Trash, Junk, Drafts)
_NAMES: dict[str, tuple[str, str, str, str]] = {
    "en": ("Sent Mail", "Trash", "Junk", "Drafts"),
    "ar": ("المرسل", "المهملات", "غير المرغوب", "المسودات"),
    "bg": ("Изпратени", "Кошче", "Спам", "Чернови"),
    "ca": ("Enviats", "Paperera", "Correu brossa", "Esborranys"),
    "cs": ("Odeslané", "Koš", "Spam", "Rozepsané"),
    "da": ("Sendt post", "Papirkurv", "Spam", "Kladder"),
    "de": ("Gesendet", "Gelöscht", "Spam", "Entwürfe"),
    "el": ("Απεσταλμένα", "Κάδος Απορριμάτων", "Ανεπιθύμητα", "Πρόχειρα"),
    "es": ("Enviados", "Papelera", "No deseado", "Borradores"),
    "et": ("Saadetud kirjad", "Prügikast", "Rämpspost", "Mustandid"),
    "fi": ("Lähetetyt", "Roskakori", "Roskaposti", "Luonnokset"),
    "fr": ("Envoyés", "Corbeille", "Pourriels", "Brouillons"),
    "he": ("נשלח", "אשפה", "זבל", "טיוטות"),
    "hr": ("Poslano", "Smeće", "Spam", "Predlošci"),
    "hu": ("Küldöttek", "Kuka", "Kéretlen", "Piszkozatok"),
    "id": ("Terkirim", "Surat Terhapus", "Sampah", "Konsep"),
    "it": ("Inviata", "Cestino", "Spam", "Bozze"),
    "ja": ("送信済み", "ごみ箱", "迷惑メール", "下書き"),
    "ko": ("보낸 편지함", "지운 편지함", "스팸 편지함", "임시 보관함"),
    "lt": ("Išsiųsti laiškai", "Šiukšlinė", "Brukalas", "Juodraščiai"),
    "lv": ("Nosūtītās", "Papīrgrozs", "Mēstules", "Uzmetumi"),
    "nb": ("Sendt", "Slettet", "Spam", "Kladd"),
    "nl": ("Verzonden berichten", "Prullenbak", "Spam", "Concepten"),
    "nn": ("Sendt", "Sletta", "Søppel", "Kladd"),
    "pl": ("Wysłane", "Kosz", "Spam", "Kopie robocze"),
    "pt": ("Enviados", "Lixeira", "Spam", "Rascunhos"),
    "ro": ("Trimise", "Gunoi", "Spam", "Ciorne"),
    "ru": ("Отправленные", "Корзина", "СПАМ", "Черновики"),
    "sk": ("Odoslané", "Kôš", "Nevyžiadaná pošta", "Koncepty"),
    "sl": ("Poslano", "Smeti", "Neželena sporočila", "Osnutki"),
    "sv": ("Skickat", "Papperskorg", "Skräp", "Utkast"),
    "tr": ("Giden", "Çöp", "İstenmeyen", "Taslak"),
    "uk": ("Надіслані", "Кошик", "Спам", "Чернетки"),
    "vi": ("Đã gửi", "Thùng rác", "Thư rác", "Thư nháp"),
    "zh": ("寄件備份", "垃圾桶", "垃圾郵件", "草稿匣"),
}

#: the keys of POST /users `mailboxes{}` that rename a default folder
CUSTOM_NAME_KEYS = {"sent": SENT, "trash": TRASH, "junk": JUNK, "drafts": DRAFTS}


def language_of(language: str) -> str:
    """The table key for a language tag: exact first, then the primary subtag, else English."""
    tag = (language or "").strip().lower().replace("_", "-")
    if tag in _NAMES:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary in _NAMES else "en"


def special_use_names(language: str, custom: Mapping[str, str] | None = None) -> dict[str, str]:
    """special-use flag -> folder name, with `custom` names (`sent`, `trash`, ... or the flags
    themselves as keys) taking precedence over the language's."""
    sent, trash, junk, drafts = _NAMES[language_of(language)]
    names = {SENT: sent, TRASH: trash, JUNK: junk, DRAFTS: drafts}
    for key, value in (custom or {}).items():
        use = CUSTOM_NAME_KEYS.get(key.lower(), key)
        if use in names and value:
            names[use] = value
    return names
