"""My tasks, and being out of office: name a delegate for a period, or cancel one (the delegation services)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from web.forms import OutOfOfficeForm, add_workflow_error
from web.views import SignedInRequest
from workflow import selectors, services
from workflow.errors import WorkflowError


@login_required
def tasks(request: SignedInRequest) -> HttpResponse:
    return tasks_page(request, OutOfOfficeForm())


def tasks_page(request: SignedInRequest, form: OutOfOfficeForm, *, status: int = 200) -> HttpResponse:
    """My tasks, and my out-of-office delegations with the form to add one."""
    return render(
        request,
        "web/tasks.html",
        {
            "nav": "tasks",
            "tasks": selectors.tasks_open_for(request.user),
            "delegations": selectors.delegations_ahead_of(request.user),
            "out_of_office_form": form,
            "candidates": selectors.approver_candidates_for(request.user),
        },
        status=status,
    )


@require_POST
@login_required
def out_of_office_create(request: SignedInRequest) -> HttpResponse:
    form = OutOfOfficeForm(request.POST)
    if form.is_valid():
        try:
            delegation = services.delegation_create(delegator=request.user, **form.cleaned_data)
        except WorkflowError as error:
            add_workflow_error(form, error)
        else:
            name = delegation.delegate.get_full_name() or delegation.delegate.get_username()
            messages.success(request, f"Out of office saved: {name} takes your new tasks in that period.")
            return HttpResponseRedirect(reverse("web:tasks"))
    return tasks_page(request, form, status=400)


@require_POST
@login_required
def out_of_office_cancel(request: SignedInRequest, delegation_id: int) -> HttpResponse:
    delegation = selectors.delegations_of(request.user).filter(pk=delegation_id).first()
    if delegation is None:
        raise Http404("No such delegation of yours.")
    try:
        services.delegation_cancel(delegation=delegation, cancelled_by=request.user)
    except WorkflowError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Out of office cancelled: new tasks come to you again.")
    return HttpResponseRedirect(reverse("web:tasks"))
