"""The tenants and webhooks pages: tenants created, disabled and enabled (by an admin of every tenant), webhook
deliveries and their failures, dead letters sent again."""

from flask import flash, g, redirect, render_template, request, url_for

from console import Denied, console
from console.queries import deliveries_of, tenant_summaries, webhook_of, webhooks_of
from console.scope import tenant_ids, tenants
from scim.tenants import TenantError, create_tenant, set_disabled
from scim.webhooks import redrive


def require_every_tenant() -> None:
    """Tenants are the deployment's own: only an admin of every tenant makes or pauses one."""
    if g.admin.tenants is not None:
        raise Denied()


@console.get("/tenants")
def tenants_page():
    return render_template("console/tenants.html", summaries=tenant_summaries(tenants()),
                           may_change=g.admin.tenants is None)


@console.post("/tenants")
def tenant_create():
    require_every_tenant()
    try:
        tenant = create_tenant(request.form.get("name", ""))
    except TenantError as exc:
        flash(str(exc))
    else:
        flash(f"Tenant {tenant.name!r} created: make it a token on the Tokens page.")
    return redirect(url_for("console.tenants_page"))


@console.post("/tenants/<int:tenant_id>/<any(disable, enable):change>")
def tenant_change(tenant_id, change):
    require_every_tenant()
    tenant = next((t for t in tenants() if t.id == tenant_id), None)
    if tenant is None:
        raise Denied()
    set_disabled(tenant.name, change == "disable")
    flash(f"Tenant {tenant.name!r} is {change}d" + (": its credentials are refused, its data kept."
                                                    if change == "disable" else "."))
    return redirect(url_for("console.tenants_page"))


@console.get("/webhooks")
def webhooks():
    return render_template("console/webhooks.html", summaries=webhooks_of(tenant_ids()),
                           names={tenant.id: tenant.name for tenant in tenants()})


@console.get("/webhooks/<int:webhook_id>")
def webhook(webhook_id):
    found = webhook_of(tenant_ids(), webhook_id)
    if found is None:
        raise Denied()
    failed_only = request.args.get("failed") == "1"
    return render_template("console/webhook.html", webhook=found, failed_only=failed_only,
                           deliveries=deliveries_of(found, failed_only, request.args.get("before", type=int)))


@console.post("/webhooks/<int:webhook_id>/redrive")
def webhook_redrive(webhook_id):
    found = webhook_of(tenant_ids(), webhook_id)
    if found is None:
        raise Denied()
    flash(f"{redrive(found.id)} dead-lettered deliveries will be sent again.")
    return redirect(url_for("console.webhook", webhook_id=webhook_id))
