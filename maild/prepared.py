"""Core statements compiled once per database and run on the driver's own connection.

`Connection.execute` spends more Python on a statement (cache key, execution
context, result object) than the statement's own conversions and the driver
together: an event INSERT takes 21 us through it and 9.5 us prepared, and
processing runs a dozen statements for every message. A `Prepared` statement is
compiled once per dialect and set of parameter names, exactly as
`Connection.execute` compiles it, and each execution converts its parameters and
result columns with that compiled statement's own type processors (JSON, UTC
times, booleans): what reaches the database, and what comes back, is what
SQLAlchemy would send and return. It runs on the connection's DBAPI connection,
inside its transaction, and a driver error is raised as SQLAlchemy raises it.

What this module does not do itself goes through `Connection.execute`: a
statement with a default computed at execution, every statement of an engine
with execution events or echo on (those must see each statement), one on a
connection outside an active transaction, and any statement should the compiler
internals read here be missing (another SQLAlchemy release; pyproject.toml bounds
it to the 2.1 series, on which these were read).
tests/test_prepared.py compares both ways of running on SQLite and PostgreSQL.

On PostgreSQL every statement waits a round trip for its answer (about 80 us on
loopback, more than most statements take). In a `pipelined` block a statement
that is only sent (`Prepared.send`: an INSERT whose key nobody reads, an event)
does not wait: psycopg's pipeline mode queues it, a `run` in the block (whose
result is read) waits for everything sent before it, and the end of the block
waits for the rest and raises the first error among them.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql import compiler
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlmodel import Session


@dataclass(frozen=True)
class Ran:
    """What one execution returned: its rows (converted), rowcount and new primary key."""

    rows: Sequence[Any]
    rowcount: int
    inserted_key: Any = None  # an INSERT's new primary key (its first column)

    def first(self) -> Any:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        """The only row (raises as SQLAlchemy's `Result.one` does otherwise)."""
        if not self.rows:
            raise NoResultFound("No row was found when one was required")
        if len(self.rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self.rows[0]

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return self.one()[0]


@dataclass
class _Plan:
    """A statement compiled for one dialect and one set of parameter names."""

    compiled: SQLCompiler
    direct: bool  # False: this compiled form needs `Connection.execute`
    sql: str = ""
    expanding: bool = False  # parameters rendered into the SQL: IN lists, literal values
    # The DBAPI's parameters in order (a positional paramstyle such as SQLite's), each
    # as `_slots` describes it; None: they go by name (PostgreSQL's).
    slots: tuple[_Slot, ...] | None = None
    processors: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    escaped: Mapping[str, str] = field(default_factory=dict)
    defaults: tuple[tuple[str, Any], ...] = ()  # the INSERT's scalar column defaults
    result_types: tuple[TypeEngine[Any], ...] = ()
    row: Any = tuple  # a named tuple of the result columns
    insert: bool = False
    lastrowid: bool = False  # the new primary key is the cursor's lastrowid
    # ... and exactly that value, as SQLAlchemy's getter would return it (`_key_is_lastrowid`)
    key_is_lastrowid: bool = False
    implicit_key: bool = False  # the new primary key comes back in a RETURNING row
    # Result processors by the driver's type codes of the columns.
    readers: dict[tuple[Any, ...], tuple[Callable[[Any], Any] | None, ...]] = field(
        default_factory=dict)
    # The IN-list parameters whose expansions are kept (`_lists_kept`); None: none are.
    lists: tuple[str, ...] | None = None
    # The expanded SQL for each tuple of those lists' lengths, as SQLAlchemy rendered it.
    expansions: dict[tuple[int, ...], _Expansion] = field(default_factory=dict)


# The most IN-list expansions one plan keeps; lengths seen after that are rendered each time.
EXPANSIONS_KEPT = 256


@dataclass(frozen=True)
class _Expansion:
    """A statement's IN lists expanded for one set of lengths: SQLAlchemy renders the
    same SQL and element names for every list of those lengths, so they are rendered once."""

    sql: str
    order: tuple[str, ...] | None  # the positional parameters' names, in order
    processors: Mapping[str, Callable[[Any], Any]]
    elements: tuple[tuple[str, tuple[str, ...]], ...]  # each list's name, its elements' names


# One positional parameter: (bind key, bind name, required, its own value, processor) or,
# for a column default, (None, name, False, the default, processor).
_Slot = tuple[str | None, str, bool, Any, Callable[[Any], Any] | None]


def _slots(compiled: SQLCompiler, defaults: dict[str, Any]) -> tuple[_Slot, ...] | None:
    """How to fill the positional parameters straight from the caller's, as
    `SQLCompiler.construct_params` and the execution context's defaults would; None when
    the compiled form has parameters this does not cover (a callable's, or values given
    with `.params()`)."""
    if not compiled.positional or getattr(compiled, "_collected_params", None):
        return None
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    processors = compiled._bind_processors
    slots: list[_Slot] = []
    for name in compiled.positiontup or ():
        processor = processors.get(name)
        if name in defaults:
            slots.append((None, name, False, defaults[name], processor))  # type: ignore[arg-type]
            continue
        bind = by_name[name]
        if bind.callable:
            return None
        slots.append((bind.key, name, bind.required, bind.value, processor))  # type: ignore[arg-type]
    return tuple(slots)


def _positional(slots: tuple[_Slot, ...], parameters: Mapping[str, Any]) -> tuple[Any, ...]:
    """The positional DBAPI parameters of one execution, converted by their types."""
    values = []
    for key, name, required, own, processor in slots:
        if key is None:
            value = own
        elif key in parameters:
            value = parameters[key]
        elif name in parameters:
            value = parameters[name]
        elif required:
            raise InvalidRequestError(f"A value is required for bind parameter {key!r}",
                                      code="cd3x")
        else:
            value = own
        values.append(value if processor is None else processor(value))
    return tuple(values)


def _plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    # The arguments `Connection.execute` compiles with: the same SQL and parameters.
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=dialect, column_keys=list(keys), for_executemany=False,
        schema_translate_map=None, linting=dialect.compiler_linting | compiler.WARN_LINTING)
    assert isinstance(compiled, SQLCompiler)
    try:
        return _direct_plan(compiled)
    except AttributeError:  # compiler internals of another SQLAlchemy release
        return _Plan(compiled, direct=False)


def _direct_plan(compiled: SQLCompiler) -> _Plan:
    """The plan to run `compiled` on the driver's cursor, if this module covers it."""
    if compiled.isinsert:  # read here first: a missing one is found before any execution
        compiled._inserted_primary_key_from_lastrowid_getter  # noqa: B018
        if compiled.implicit_returning:
            compiled._inserted_primary_key_from_returning_getter  # noqa: B018
    defaults: list[tuple[str, Any]] = []
    for column in compiled.insert_prefetch:
        arg, is_scalar, _callable, is_sentinel = column._default_description_tuple
        if not is_scalar or is_sentinel:
            return _Plan(compiled, direct=False)
        defaults.append((compiled._within_exec_param_key_getter(column), arg))
    if compiled.update_prefetch or compiled.schema_translate_map:
        return _Plan(compiled, direct=False)
    result_columns = compiled._result_columns or []
    names = [entry[0] for entry in result_columns]
    expanding = bool(compiled.literal_execute_params or compiled.post_compile_params)
    return _Plan(
        compiled, direct=True, sql=compiled.string, expanding=expanding,
        slots=None if expanding else _slots(compiled, dict(defaults)),
        processors=dict(compiled._bind_processors),  # type: ignore[arg-type]
        escaped=dict(compiled.escaped_bind_names), defaults=tuple(defaults),
        result_types=tuple(entry[3] for entry in result_columns),
        row=namedtuple("Row", names, rename=True) if names else tuple,
        insert=bool(compiled.isinsert), lastrowid=bool(compiled.postfetch_lastrowid),
        key_is_lastrowid=_key_is_lastrowid(compiled),
        implicit_key=bool(compiled.isinsert and compiled.implicit_returning),
        lists=_lists_kept(compiled) if expanding else None)


def _lists_kept(compiled: SQLCompiler) -> tuple[str, ...] | None:
    """The names of the IN-list parameters of `compiled` whose expansion depends on their
    lengths alone; None if any of its rendered parameters' depends on more (a literal
    value rendered into the SQL, a list of tuples, numbered parameters)."""
    if compiled.literal_execute_params or compiled._numeric_binds:
        return None
    names = []
    for parameter in compiled.post_compile_params:
        if parameter.literal_execute or parameter.type._is_tuple_type:
            return None
        names.append(compiled.bind_names[parameter])
    return tuple(names)


def _key_is_lastrowid(compiled: SQLCompiler) -> bool:
    """Whether the new primary key of the INSERT `compiled` is the cursor's lastrowid as it is.

    So it is when the table's key is its one autoincrement column, whose type converts
    nothing it reads, and the statement gives it no value: SQLAlchemy's getter
    (`_inserted_primary_key_from_lastrowid_getter`) then returns a row of that lastrowid
    alone, at the price of a generator and a `Row`, once for every ticket, event and
    outbox row inserted.
    """
    if not (compiled.isinsert and compiled.postfetch_lastrowid):
        return False
    assert compiled.compile_state is not None
    table = compiled.compile_state.statement.table
    column = table._autoincrement_column
    keys = list(table.primary_key)
    return (column is not None and len(keys) == 1 and keys[0] is column
            and column.type._cached_result_processor(compiled.dialect, None) is None
            and compiled._within_exec_param_key_getter(column) not in compiled.binds)


_SESSION_CONNECTION = "maild.prepared.connection"


def connection_of(where: Session | Connection) -> Connection:
    """The connection of `where`'s transaction (a session's, begun if it was not).

    A session's is remembered with its transaction: `Session.connection` costs more than
    a prepared statement does, and a transaction keeps its connection until it ends.
    """
    if not isinstance(where, Session):
        return where
    transaction = where.get_transaction()
    remembered = where.info.get(_SESSION_CONNECTION)
    if (transaction is not None and remembered is not None and remembered[0] is transaction
            and transaction.is_active):
        connection: Connection = remembered[1]
        return connection
    connection = where.connection()
    where.info[_SESSION_CONNECTION] = (where.get_transaction(), connection)
    return connection


class Prepared:
    """One Core statement, compiled on first use with each database and set of names."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Plan]] = (
            weakref.WeakKeyDictionary())
        # The dialect asked for last and its plans: a process runs with one database, and
        # the weak dictionary's lookup costs more than the rest of finding a plan.
        self._last: tuple[weakref.ref[Dialect], dict[tuple[str, ...], _Plan]] | None = None

    def plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        """The statement as compiled for `dialect` and parameter names `keys` (sorted)."""
        last = self._last
        if last is None or last[0]() is not dialect:
            last = self._last = (weakref.ref(dialect), self._plans.setdefault(dialect, {}))
        plans = last[1]
        found = plans.get(keys)
        if found is None:
            found = plans[keys] = _plan(self.statement, dialect, keys)
        return found

    def run(self, where: Session | Connection, parameters: Mapping[str, Any] | None = None
            ) -> Ran:
        """Execute once with `parameters` in the transaction of `where`."""
        connection = connection_of(where)
        parameters = parameters or {}
        plan = self.plan(connection.dialect, tuple(sorted(parameters)))
        if not plan.direct or not _plain(connection):
            return _through_sqlalchemy(connection, self.statement, parameters, plan)
        pipeline = connection.info.get(_PIPELINE)
        cursor, sql, bound = _execute(connection, plan, parameters)
        try:
            if pipeline is not None:
                pipeline.sync()  # the answer, and those of the statements sent before it
            rows = _read(plan, cursor, connection.dialect) if cursor.description else []
            rowcount = cursor.rowcount
            lastrowid = cursor.lastrowid if plan.lastrowid else None
        except BaseException as error:
            connection._handle_dbapi_exception(error, sql, bound, cursor, None)
        cursor.close()
        if not plan.insert:
            return Ran(rows, rowcount)
        # The new primary key as `CursorResult.inserted_primary_key` has it.
        if plan.key_is_lastrowid and lastrowid is not None:
            return Ran(rows, rowcount, lastrowid)
        compiled = plan.compiled
        if plan.lastrowid:
            key = compiled._inserted_primary_key_from_lastrowid_getter(lastrowid, parameters)
        elif plan.implicit_key:
            key = compiled._inserted_primary_key_from_returning_getter(
                rows[0], parameters) if rows else None
            rows = []  # the RETURNING of the key is not the statement's result
        else:
            key = compiled._inserted_primary_key_from_lastrowid_getter(None, parameters)
        return Ran(rows, rowcount, key[0] if key else None)

    def send(self, where: Session | Connection, parameters: Mapping[str, Any] | None = None
             ) -> None:
        """Execute once with `parameters`, reading nothing back: in a `pipelined` block on
        PostgreSQL without waiting for the answer (an error comes at the block's end)."""
        connection = connection_of(where)
        parameters = parameters or {}
        plan = self.plan(connection.dialect, tuple(sorted(parameters)))
        if not plan.direct or not _plain(connection):
            _through_sqlalchemy(connection, self.statement, parameters, plan)
            return
        cursor, _, _ = _execute(connection, plan, parameters)
        cursor.close()


def _execute(connection: Connection, plan: _Plan, parameters: Mapping[str, Any]
             ) -> tuple[Any, str, Any]:
    """(cursor, SQL, DBAPI parameters) of `plan` executed with `parameters` on a cursor of the
    driver's own; a parameter or driver error is raised as SQLAlchemy raises it."""
    sql, bound = plan.sql, parameters
    try:
        sql, bound = _bound(plan, parameters)
    except Exception as error:  # a missing parameter, a value its type refuses
        connection._handle_dbapi_exception(error, sql, parameters, None, None)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, bound)
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, bound, cursor, None)
    return cursor, sql, bound


# Where a connection's pipeline is kept while a `pipelined` block lasts (`Connection.info`).
_PIPELINE = "maild.prepared.pipeline"


@contextmanager
def pipelined(where: Session | Connection) -> Iterator[None]:
    """A block in which `Prepared.send` does not wait for PostgreSQL's answer.

    Elsewhere (SQLite, a connection with events or outside a transaction, a block
    inside another) the block changes nothing. Inside it only prepared statements
    may run: SQLAlchemy's own execution (the ORM's included) would read a result that
    has not come yet, and is refused with a RuntimeError.
    """
    connection = connection_of(where)
    driver: Any = connection.connection.driver_connection
    if (connection.dialect.name != "postgresql" or not hasattr(driver, "pipeline")
            or _PIPELINE in connection.info or not _plain(connection)):
        yield
        return
    cursor_factory = driver.cursor_factory
    try:
        with driver.pipeline() as pipeline:
            connection.info[_PIPELINE] = pipeline
            driver.cursor_factory = _read_after_sync(cursor_factory)
            try:
                yield
            finally:
                driver.cursor_factory = cursor_factory
                del connection.info[_PIPELINE]
    except connection.dialect.loaded_dbapi.Error as error:
        connection._handle_dbapi_exception(error, "(statements sent in a pipeline)", {}, None,
                                           None)


@cache
def _read_after_sync(cursor_class: type) -> type:
    """`cursor_class` whose `description` may not be read before its result has come.

    In a pipeline a result comes at the next sync: `Prepared.run` syncs before it reads,
    `Prepared.send` never reads, and SQLAlchemy's own execution reads at once (it would
    find no rows where there are some).
    """

    class ReadAfterSync(cursor_class):  # type: ignore[misc]
        @property
        def description(self) -> Any:
            if self.pgresult is None and self.connection.pgconn.pipeline_status:
                raise RuntimeError(
                    "SQLAlchemy's own execution (a query, the ORM) ran in a pipelined block, "
                    "where its result would be read before it came: run it before the block")
            return super().description

    return ReadAfterSync


def _bound(plan: _Plan, parameters: Mapping[str, Any]) -> tuple[str, Any]:
    """The SQL and DBAPI parameters of one execution: with defaults, converted by their
    types, IN lists expanded (the steps of SQLAlchemy's `DefaultExecutionContext`)."""
    if plan.slots is not None:
        return plan.sql, _positional(plan.slots, parameters)
    compiled = plan.compiled
    values = compiled.construct_params(parameters, escape_names=False)
    for key, default in plan.defaults:
        values[key] = default
    sql, processors = plan.sql, plan.processors
    order: Sequence[str] | None = compiled.positiontup
    if plan.expanding:
        expansion = _expansion(plan, values)
        sql, order, processors = expansion.sql, expansion.order, expansion.processors
    if compiled.positional:
        return sql, tuple(processors[key](values[key]) if key in processors
                          else values[key] for key in order or ())
    escaped = plan.escaped
    return sql, {escaped.get(key, key): processors[key](value) if key in processors
                 else value for key, value in values.items()}


def _expansion(plan: _Plan, values: MutableMapping[str, Any]) -> _Expansion:
    """`plan`'s SQL with the IN lists in `values` expanded, their elements put in `values`
    under their own names (SQLAlchemy's `_process_parameters_for_postcompile`); kept for
    the lists' lengths where `plan.lists` says it may be, and taken from there next time."""
    lengths: tuple[int, ...] | None = None
    if plan.lists is not None and all(
            isinstance(values.get(name), (list, tuple)) for name in plan.lists):
        lengths = tuple(len(values[name]) for name in plan.lists)
        kept = plan.expansions.get(lengths)
        if kept is not None:
            for name, names in kept.elements:
                values.update(zip(names, values.pop(name), strict=True))
            return kept
    # A list given as another iterable (lengths is None) is left for SQLAlchemy to read once.
    given = {name: list(values[name]) for name in plan.lists or ()} if lengths is not None else {}
    expanded = plan.compiled._process_parameters_for_postcompile(values)
    made = _Expansion(
        sql=expanded.statement,
        order=tuple(expanded.positiontup) if expanded.positiontup is not None else None,
        processors={**plan.processors, **expanded.processors},
        elements=tuple((name, tuple(expanded.parameter_expansion.get(name, ())))
                       for name in plan.lists or ()))
    # Kept only if the elements went where the names say (so they do in this release), and
    # for a bounded number of lengths: a plan's lists are a batch's or a mail's at most.
    if lengths is not None and len(plan.expansions) < EXPANSIONS_KEPT and all(
            [values.get(element) for element in names] == given[name]
            for name, names in made.elements):
        plan.expansions[lengths] = made
    return made


def _read(plan: _Plan, cursor: Any, dialect: Dialect) -> list[Any]:
    """The cursor's rows, each column converted as SQLAlchemy's result would convert it."""
    codes = tuple(column[1] for column in cursor.description)
    readers = plan.readers.get(codes)
    if readers is None:
        readers = plan.readers[codes] = tuple(
            type_._cached_result_processor(dialect, code)
            for type_, code in zip(plan.result_types, codes, strict=True))
    make = plan.row._make if plan.row is not tuple else tuple
    if not any(readers):
        return [make(row) for row in cursor.fetchall()]
    return [make(value if reader is None else reader(value)
                 for reader, value in zip(readers, row, strict=True))
            for row in cursor.fetchall()]


def _through_sqlalchemy(connection: Connection, statement: Executable,
                        parameters: Mapping[str, Any], plan: _Plan) -> Ran:
    result: CursorResult[Any] = connection.execute(statement, dict(parameters))
    rows = list(result) if result.returns_rows else []
    inserted = None
    if plan.compiled.isinsert:
        primary = result.inserted_primary_key
        inserted = primary[0] if primary else None
    return Ran(rows, result.rowcount, inserted)


def _plain(connection: Connection) -> bool:
    """Whether a statement may run on `connection`'s driver cursor as it is: in an active
    transaction (else `Connection.execute` begins one, or refuses), with no execution
    events or echo to see it."""
    nested = connection.get_nested_transaction()
    return (connection.in_transaction() and (nested is None or nested.is_active)
            and not (connection._has_events or connection.engine._has_events
                     or connection._echo))


def execute_sql(where: Session | Connection, sql: str) -> None:
    """Run one statement without parameters or result (a savepoint) on the driver's cursor."""
    connection = connection_of(where)
    if not _plain(connection):
        connection.exec_driver_sql(sql)
        return
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, (), cursor, None)
    cursor.close()
