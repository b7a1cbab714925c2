"""The `wildpy` command: serve, token, user, db, config.

Every subcommand prints one clear line and exits non-zero on failure. Commands that need the
database attach to the embedded server of a running `wildpy serve` on the same data directory,
or start it themselves when nothing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from wildpy import __version__
from wildpy.cli.serve import serve
from wildpy.config import Config, ConfigError, load_config
from wildpy.errors import WildpyError
from wildpy.handlers.user_views import user_body
from wildpy.host import REGISTRY, HostError
from wildpy.roles import Roles, RolesError
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.account_inputs import Limits, NewUser
from wildpy.storage.database import is_id
from wildpy.storage.embedded import EmbeddedDatabaseError
from wildpy.storage.pagination import PageRequest


class CliError(Exception):
    """A failure to report as one line."""


def _parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the subcommand; SUPPRESS keeps a subcommand that was
    # not given one from overwriting a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML file merged over config/default.toml",
    )
    parser = argparse.ArgumentParser(
        prog="wildpy",
        description="wildpy: a self-hosted mail server with a WildDuck-compatible API.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"wildpy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve_cmd = commands.add_parser(
        "serve", help="run the server: every enabled door and worker", parents=[common]
    )
    serve_cmd.add_argument(
        "--only",
        type=_service_names,
        default=None,
        metavar="NAMES",
        help=f"run only these, comma-separated ({', '.join(s.name for s in REGISTRY)})",
    )

    def group(name: str, help_text: str) -> Any:
        sub = commands.add_parser(name, help=help_text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    token_cmds = group("token", "manage access tokens")
    create_token = token_cmds.add_parser(
        "create", help="create a role token (never expires)", parents=[common]
    )
    create_token.add_argument("role", help="a role from the roles file, e.g. root, user, webmail")
    create_token.add_argument("--user", metavar="ID", help="the user the token acts as")
    create_token.add_argument("--description", default="", help="a note stored with the token")

    user_cmds = group("user", "manage users")
    create_user = user_cmds.add_parser("create", help="create a user", parents=[common])
    create_user.add_argument("username")
    create_user.add_argument("--password", help="password (omit for an account without one)")
    create_user.add_argument("--address", help="main address (default: from the username)")
    create_user.add_argument("--name", help="display name")
    create_user.add_argument("--quota", type=int, help="storage quota in bytes")
    list_users = user_cmds.add_parser("list", help="list users", parents=[common])
    list_users.add_argument("--query", help="only users whose username or address contains this")
    list_users.add_argument("--limit", type=int, default=250, help="at most this many (1-250)")
    show_user = user_cmds.add_parser("show", help="show one user as JSON", parents=[common])
    show_user.add_argument("user", help="user id, username or address")
    delete_user = user_cmds.add_parser(
        "delete", help="delete a user (restorable until purged)", parents=[common]
    )
    delete_user.add_argument("user", help="user id, username or address")

    db_cmds = group("db", "database maintenance")
    db_cmds.add_parser("ensure-indexes", help="create every declared index", parents=[common])

    config_cmds = group("config", "configuration")
    config_cmds.add_parser(
        "check", help="validate the configuration and print it", parents=[common]
    )
    return parser


def _service_names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    known = {service.name for service in REGISTRY}
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown service {name!r} (choose from {', '.join(sorted(known))})"
            )
    if not names:
        raise argparse.ArgumentTypeError("name at least one service")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config_path = getattr(args, "config", None)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path)
        if args.command == "serve":
            return serve(config, args.only)
        if args.command == "config":
            print(json.dumps(_redacted(config), indent=2))
            return 0
        if args.command == "token":
            # before any database is opened: a typo costs no start-up
            _check_role(Roles.load(config.api.roles), args.role, args.user)
        return asyncio.run(_with_runtime(config, _command(args)))
    except (ConfigError, RolesError, EmbeddedDatabaseError, CliError, HostError) as exc:
        print(f"wildpy: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except WildpyError as exc:
        print(f"wildpy: {exc.code()}: {exc.text}", file=sys.stderr)
        return 1
    except OSError as exc:
        # a listener that cannot bind (address in use, no permission for a low port)
        print(f"wildpy: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _redacted(config: Config) -> dict[str, Any]:
    document = config.model_dump(by_alias=True)
    if document["api"]["accessToken"]:
        document["api"]["accessToken"] = "(set)"
    return document


Command = Callable[[Runtime], Awaitable[int]]


async def _with_runtime(config: Config, command: Command) -> int:
    async with open_runtime(config, attach=True) as runtime:
        return await command(runtime)


def _command(args: argparse.Namespace) -> Command:
    if args.command == "token":
        return lambda rt: _create_token(rt, args.role, args.user, args.description)
    if args.command == "db":
        return _ensure_indexes
    if args.action == "create":
        return lambda rt: _create_user(rt, args)
    if args.action == "list":
        return lambda rt: _list_users(rt, args.query, args.limit)
    if args.action == "show":
        return lambda rt: _show_user(rt, args.user)
    return lambda rt: _delete_user(rt, args.user)


def _check_role(roles: Roles, role: str, user: str | None) -> None:
    if not roles.exists(role):
        raise CliError(f"unknown role {role!r}; roles: {', '.join(roles.names)}")
    if user is None and roles.user_bound(role):
        # such a token could only act on its own user's things, and it would have none
        raise CliError(f"role {role!r} acts for one user: name it with --user ID|USERNAME")


async def _create_token(runtime: Runtime, role: str, user: str | None, description: str) -> int:
    _check_role(runtime.roles, role, user)
    owner = "root"
    if user is not None:
        owner = await _user_id(runtime, user)
    token = await runtime.tokens.provision(role, owner, description)
    print(token)
    return 0


async def _ensure_indexes(runtime: Runtime) -> int:
    # open_runtime ensured them already; say so
    print(f"indexes ensured on {len(runtime.repositories.all())} collections")
    return 0


async def _user_id(runtime: Runtime, ident: str) -> str:
    if is_id(ident):
        await runtime.users.require(ident)
        return ident
    return await runtime.users.resolve(ident)


async def _create_user(runtime: Runtime, args: argparse.Namespace) -> int:
    new = NewUser(
        username=args.username,
        password=args.password or False,
        address=args.address,
        name=args.name,
        limits=Limits(quota=args.quota),
    )
    print(await runtime.users.create(new))
    return 0


async def _list_users(runtime: Runtime, query: str | None, limit: int) -> int:
    if not 1 <= limit <= 250:
        raise CliError("--limit must be between 1 and 250")
    result = await runtime.users.list(PageRequest(limit=limit), query=query)
    for row in result.results:
        print(f"{row['id']}  {row['username']:<32} {row['address']}")
    print(f"({len(result.results)} of {result.page.total})")
    return 0


async def _show_user(runtime: Runtime, ident: str) -> int:
    # the user as GET /users/:id shows it: the CLI speaks the API's JSON
    user = user_body(await runtime.users.get(await _user_id(runtime, ident)))
    print(json.dumps(user, indent=2, default=str))
    return 0


async def _delete_user(runtime: Runtime, ident: str) -> int:
    result = await runtime.users.delete(await _user_id(runtime, ident), None)
    print(f"deleted user {result['user']} ({result['addresses']['deleted']} addresses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
