from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from citations.language import SUPPORTED


def ui_strings() -> dict[str, str]:
    """The chat page's texts that its script switches to the answer's language."""
    return {
        "title": _("Workplace-safety assistant"),
        "logout": _("Log out"),
        "intro": _("Ask a question about workplace safety in Dutch or English."),
        "placeholder": _("Ask a question… (Enter sends, Shift+Enter for a new line)"),
        "send": _("Send"),
        "stop": _("Stop"),
        "retry": _("Try again"),
        "language": _("Answer language"),
        "auto": _("Automatic"),
        "sources": _("Sources"),
        "you": _("You"),
        "assistant": _("EVI 360"),
        "stopped": _("Stopped."),
        "reconnecting": _("Connection lost, reconnecting…"),
        "error.timeout": _("The answer took too long and was stopped."),
        "error.upstream_unavailable": _("The assistant is busy right now. Please try again in a moment."),
        "error.upstream_error": _("The assistant could not answer this question."),
        "error.internal": _("Something went wrong on our side."),
        "error.rate_limited": _("You have asked many questions in a short time. Please wait a moment."),
        "error.too_many_streams": _("Several answers are still being written. Wait for one to finish."),
        "error.not_authenticated": _("Your session has ended. Please log in again."),
        "error.network": _("The connection to the server was lost."),
        "error.invalid_query": _("Please type a question first."),
        "error.query_too_long": _("The question is too long (at most 4,000 characters)."),
        "error.default": _("Something went wrong."),
    }


@require_GET
@login_required
def chat(request: HttpRequest) -> HttpResponse:
    strings = {}
    for language in SUPPORTED:
        with translation.override(language):
            strings[language] = ui_strings()
    return render(request, "streaming/chat.html", {"ui_strings": strings})
