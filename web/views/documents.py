"""The documents I can see, a new draft, and one document with its steps and decisions.

Every change is one `workflow.services` call; a refusal (`WorkflowError`) is shown on the page, beside the
field it names or as a message, never a 500. A document the user may not see is a 404, as in the API.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from web.forms import DecisionForm, DocumentForm, add_workflow_error
from web.views import SignedInRequest
from workflow import selectors, services
from workflow.errors import WorkflowError
from workflow.models import Document

LIST_LIMIT = 100  # per section of the documents page, newest first


@login_required
def documents(request: SignedInRequest) -> HttpResponse:
    listed = selectors.documents_listed_for(request.user)
    return render(
        request,
        "web/documents.html",
        {
            "nav": "documents",
            "mine": listed.filter(requester_id=request.user.pk)[:LIST_LIMIT],
            "others": listed.exclude(requester_id=request.user.pk)[:LIST_LIMIT],
            "limit": LIST_LIMIT,
        },
    )


@login_required
def document_new(request: SignedInRequest) -> HttpResponse:
    form = DocumentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            document = services.document_create(requester=request.user, **form.cleaned_data)
        except WorkflowError as error:
            add_workflow_error(form, error)
        else:
            messages.success(request, "Draft created. Submit it for approval when it is ready.")
            return HttpResponseRedirect(reverse("web:document", args=[document.pk]))
    return render(
        request,
        "web/document_new.html",
        {"nav": "documents", "form": form, "candidates": selectors.approver_candidates_for(request.user)},
        status=400 if form.errors else 200,
    )


@login_required
def document(request: SignedInRequest, document_id: int) -> HttpResponse:
    return _document_page(request, _visible_document(request, document_id))


@require_POST
@login_required
def document_submit(request: SignedInRequest, document_id: int) -> HttpResponse:
    document = _visible_document(request, document_id)
    try:
        services.document_submit(document=document, submitted_by=request.user)
    except WorkflowError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Submitted: the first approver has it now.")
    return HttpResponseRedirect(reverse("web:document", args=[document.pk]))


@require_POST
@login_required
def document_withdraw(request: SignedInRequest, document_id: int) -> HttpResponse:
    document = _visible_document(request, document_id)
    try:
        services.document_withdraw(document=document, withdrawn_by=request.user)
    except WorkflowError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Withdrawn: the approver's task is cancelled and gone from their devices.")
    return HttpResponseRedirect(reverse("web:document", args=[document.pk]))


@require_POST
@login_required
def document_approve(request: SignedInRequest, document_id: int) -> HttpResponse:
    return _decide(request, document_id, reject=False)


@require_POST
@login_required
def document_reject(request: SignedInRequest, document_id: int) -> HttpResponse:
    return _decide(request, document_id, reject=True)


def _decide(request: SignedInRequest, document_id: int, *, reject: bool) -> HttpResponse:
    document = _visible_document(request, document_id)
    form = DecisionForm(request.POST, comment_required=reject)
    if form.is_valid():
        comment = form.cleaned_data["comment"]
        try:
            if reject:
                services.document_reject(document=document, approver=request.user, comment=comment)
            else:
                services.step_approve(document=document, approver=request.user, comment=comment)
        except WorkflowError as error:
            if not error.field:  # not the input: the document moved on, or it is not theirs to decide
                messages.error(request, error.message)
                return HttpResponseRedirect(reverse("web:document", args=[document.pk]))
            add_workflow_error(form, error)
        else:
            messages.success(request, "Rejected: the requester has been told why." if reject else "Approved.")
            return HttpResponseRedirect(reverse("web:document", args=[document.pk]))
    return _document_page(request, document, decision_form=form, status=400)


def _visible_document(request: SignedInRequest, document_id: int) -> Document:
    document = selectors.document_visible_to(document_id=document_id, user=request.user)
    if document is None:
        raise Http404("No such document, or not one you may see.")
    return document


def _document_page(
    request: SignedInRequest, document: Document, *, decision_form: DecisionForm | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "web/document.html",
        {
            "nav": "documents",
            "document": document,
            "steps": document.steps.all(),
            "actions": selectors.document_actions_for(document, request.user),
            "decision_form": decision_form or DecisionForm(),
        },
        status=status,
    )
