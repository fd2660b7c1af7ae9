"""The ``servq users`` and ``servq tokens`` commands: memberships and bearer tokens
(assembled by ``cli.py``).
"""

from __future__ import annotations

import re
import sys

import click
from sqlalchemy import select

from servq.core.commands import CliError, get_app, open_session, parse_duration, tenant_by_slug


@click.group()
def users():
    """Users and their memberships."""


@users.command("add")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(
    ["owner", "admin", "manager", "inspector", "agent", "viewer"]))
@click.option("--name", default=None, help="Display name (new users).")
@click.option("--password-stdin", is_flag=True, help="Read the user's password from stdin.")
def users_add(slug, email, role, name, password_stdin):
    """Add a user to a tenant (the user is created if new); changing a role revokes the
    member's tokens."""
    from servq.core.audit import audit
    from servq.core.auth.passwords import MIN_LENGTH, hash_password
    from servq.core.auth.tokens import revoke_tokens_of
    from servq.core.models import Membership, User

    email = email.strip().lower()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise CliError(f"not a valid email address: {email!r}")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < MIN_LENGTH:
            raise CliError(f"the password must have at least {MIN_LENGTH} characters")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with open_session(app) as session:
        user = session.scalar(select(User).where(User.email == email))
        created_user = user is None
        if created_user:
            user = User(email=email, name=name or email.split("@")[0])
            session.add(user)
            session.flush()
        if password:
            user.password_hash = hash_password(password)
        session.set_tenant(tenant.id)
        membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        if membership is None:
            membership = Membership(user_id=user.id, role=role)
            session.add(membership)
            session.flush()
            audit(session, "memberships", membership.id, "created", None, {"role": [None, role]})
            what = "added"
        elif membership.role != role:
            audit(session, "memberships", membership.id, "changed", None, {"role": [membership.role, role]})
            membership.role = role
            revoke_tokens_of(session, membership.id)
            what = "role changed (tokens revoked)"
        else:
            what = "already a member with this role"
        session.commit()
    click.echo(f"{email} ({'new user' if created_user else 'existing user'}) in {slug} as {role}: {what}")


@click.group()
def tokens():
    """Bearer tokens."""


@tokens.command("create")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--email", required=True, help="The member the token acts as.")
@click.option("--expires-in", default="30d", show_default=True, help="Lifetime: 30d, 12h, 90m.")
@click.option("--label", default="servq tokens create", show_default=True)
def tokens_create(slug, email, expires_in, label):
    """Issue a bearer token for a member; prints the token alone on stdout."""
    from servq.core.auth.tokens import issue_token
    from servq.core.models import Membership, User

    ttl = parse_duration(expires_in)
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with open_session(app) as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None or not user.is_active:
            raise CliError(f"no active user {email!r}")
        session.set_tenant(tenant.id)
        membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        if membership is None:
            raise CliError(f"{email} is not a member of {slug}")
        clear, row = issue_token(session, membership, ttl, label=label)
        session.commit()
    click.echo(clear)
    click.echo(f"expires {row.expires_at.isoformat()} ({membership.role} in {slug})", err=True)
