from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from citations.language import SUPPORTED
from citations.models import Source
from evi360.parsing import parse_count
from streaming.access import tokens
from streaming.models import ApiKey
from streaming.web.documents import http_url, render_markdown


def ui_strings() -> dict[str, str]:
    """The chat page's texts that its script switches to the answer's language."""
    return {
        "title": _("Workplace-safety assistant"),
        "logout": _("Log out"),
        "keys": _("API keys"),
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
        "error.cancelled": _("This answer was stopped before it was finished."),
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
        "conversations": _("Conversations"),
        "new_conversation": _("New conversation"),
        "no_conversations": _("No conversations yet."),
        "more": _("More…"),
        "delete": _("Delete"),
        "delete_conversation": _("Delete conversation “%(title)s”?"),
        "turn.cancelled": _("This answer was stopped before it was finished."),
        "turn.failed": _("This answer failed and is not part of the conversation's memory."),
        "turn.streaming": _("This answer is still being written."),
        "error.load": _("The conversation could not be loaded."),
        "copy": _("Copy"),
        "copied": _("Copied to the clipboard."),
        "copy_failed": _("The answer could not be copied."),
        "feedback": _("Feedback on this answer"),
        "feedback.up": _("Good answer"),
        "feedback.down": _("Bad answer"),
        "feedback.why": _("What was wrong?"),
        "reason.incorrect": _("Incorrect"),
        "reason.incomplete": _("Incomplete"),
        "reason.wrong_sources": _("Wrong sources"),
        "reason.wrong_language": _("Wrong language"),
        "reason.other": _("Other"),
        "feedback.comment": _("Comment (optional)"),
        "feedback.send": _("Send"),
        "feedback.cancel": _("Cancel"),
        "feedback.thanks": _("Thank you for your feedback."),
        "feedback.withdrawn": _("Your feedback was withdrawn."),
        "feedback.failed": _("Your feedback could not be saved."),
        "regenerate": _("Regenerate"),
        "turn.regenerated": _("Answered again below (no longer in the conversation's memory)."),
    }


@require_GET
@login_required
def chat(request: HttpRequest) -> HttpResponse:
    strings = {}
    for language in SUPPORTED:
        with translation.override(language):
            strings[language] = ui_strings()
    return render(request, "streaming/chat.html", {"ui_strings": strings})


@require_http_methods(["GET", "POST"])
@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """The user's personal API keys (for OpenAI-compatible clients): create one, shown once;
    revoke one. And "log out everywhere": every JWT of the user's is revoked (API keys and this
    browser session stay)."""
    new_key = None
    error = None
    if request.method == "POST":
        if "logout_everywhere" in request.POST:
            tokens.revoke_tokens(request.user)
            return redirect(reverse("api_keys") + "?logged_out=1")
        if "revoke" in request.POST:
            if (pk := parse_count(request.POST["revoke"])) is None:  # a key's id, nothing else
                return _keys_page(request, error=_("That is not a key of yours."), status=400)
            key = get_object_or_404(ApiKey, pk=pk, user=request.user, revoked_at__isnull=True)
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            return redirect("api_keys")
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 100:
            error = _("Give the key a name of at most 100 characters.")
        else:
            _key, new_key = ApiKey.issue(request.user, name)
    return _keys_page(request, new_key=new_key, error=error)


def _keys_page(
    request: HttpRequest, new_key: str | None = None, error: str | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "keys": ApiKey.objects.filter(user=request.user, revoked_at__isnull=True),
        "new_key": new_key,
        "error": error,
        "logged_out": request.method == "GET" and "logged_out" in request.GET,
    }
    return render(request, "streaming/api_keys.html", context, status=status)


@require_GET
@login_required
def source_page(request: HttpRequest, pk: str) -> HttpResponse:
    """A source document of the knowledge base, passage by passage, with the passage
    ``?passage=<chunk id>`` highlighted: where an answer's citation of a source without a URL of
    its own points."""
    if (source_id := parse_count(pk)) is None:  # digits only, and few enough for the database
        raise Http404
    source = get_object_or_404(Source, pk=source_id)
    cited = parse_count(request.GET.get("passage", ""))  # anything but a chunk id highlights nothing
    passages = [
        {
            "id": chunk.pk,
            "heading": chunk.heading_path,
            "html": mark_safe(render_markdown(chunk.text)),  # markdown-it escapes the document
            "cited": chunk.pk == cited,
            "page": chunk.page,
        }
        for chunk in source.chunks.order_by("position")
    ]
    context = {"source": source, "url": http_url(source.url), "passages": passages}
    return render(request, "streaming/source.html", context)
