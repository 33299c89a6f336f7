"""Inserting many rows without building a model instance per row: what the importers write with.

Django's bulk_create prepares every field of every instance through the field machinery; for the
hundreds of thousands of rows of a manifest that is most of an import's time. insert_rows takes
plain tuples, fills the columns the caller leaves out with their model defaults and sends them in
one go: COPY on PostgreSQL (psycopg dumps the values in C, and the server parses no statement per
row; triggers fire on COPY as on INSERT), one executemany on SQLite. It returns no ids: callers
read them back by a unique key. Imports nothing from the app.
"""

import time

from django.db import connection
from django.db.models import DateTimeField

CHUNK = 5000
# Values of one IN (...) on SQLite, within the parameters of a statement of any SQLite build.
IN_CHUNK = 900
# Lines into an import after which, and at whose end, the statistics of its tables are refreshed.
STATISTICS_AFTER_LINES = 10_000


def insert_rows(model, fields, rows):
    """INSERT rows (tuples of values for `fields`, attnames) into model's table.

    Every other concrete column but the primary key gets its model default, the same for all rows
    (a callable default is called once per call); a column with no default must be in `fields`.
    """
    if not rows:
        return
    opts = model._meta
    given = [opts.get_field(name) for name in fields]
    rest = [field for field in opts.concrete_fields if not field.primary_key and field not in given]
    defaults = tuple(field.get_default() for field in rest)
    for field, default in zip(rest, defaults, strict=True):
        if default is None and not field.null:
            raise ValueError(f"{opts.label}.{field.attname} has no default: give it")
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    columns = ", ".join(quote(field.column) for field in [*given, *rest])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({columns}) FROM STDIN"
            started = time.monotonic()
            # psycopg dumps datetimes itself, and COPY takes the defaults as given. Errors are
            # Django's (IntegrityError...), as through its cursor.
            with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                write = copy.write_row
                if defaults:
                    for row in rows:
                        write((*row, *defaults))
                else:
                    for row in rows:
                        write(row)
            if connection.queries_logged:
                # COPY bypasses Django's cursor wrapper: logged here, so query counts still see it.
                connection.queries_log.append(
                    {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"})
            return
        defaults = tuple(_adapt(field)(default) for field, default in zip(rest, defaults, strict=True))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * (len(given) + len(rest)))})"
        # Only datetimes need adapting (SQLite stores text); a batch's rows share few distinct ones.
        dated = [index for index, field in enumerate(given) if isinstance(field, DateTimeField)]
        adapted = {}
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            if not dated:
                values = [(*row, *defaults) for row in chunk]
            else:
                values = []
                for row in chunk:
                    row = list(row)
                    for index in dated:
                        value = row[index]
                        if value not in adapted:
                            adapted[value] = connection.ops.adapt_datetimefield_value(value)
                        row[index] = adapted[value]
                    values.append((*row, *defaults))
            cursor.executemany(sql, values)


def pairs_where_in(model, key, value, keys, **equal):
    """{key: value} of the rows whose `key` column is one of `keys` (and whose other columns equal
    `equal`), read with one plain query: no model instances, no per-value query compiling."""
    if not keys:
        return {}
    opts = model._meta
    quote = connection.ops.quote_name
    key_column, value_column = quote(opts.get_field(key).column), quote(opts.get_field(value).column)
    conditions = [f"{quote(opts.get_field(name).column)} = %s" for name in equal]
    head = f"SELECT {key_column}, {value_column} FROM {quote(opts.db_table)} WHERE "
    found = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter: psycopg binds it as one value, whatever the number of keys.
            cursor.execute(head + " AND ".join([*conditions, f"{key_column} = ANY(%s)"]),
                           [*equal.values(), list(keys)])
            found.update(cursor.fetchall())
            return found
        keys = list(keys)
        for start in range(0, len(keys), IN_CHUNK):
            part = keys[start:start + IN_CHUNK]
            cursor.execute(
                head + " AND ".join([*conditions, f"{key_column} IN ({', '.join(['%s'] * len(part))})"]),
                [*equal.values(), *part])
            found.update(cursor.fetchall())
    return found


def update_rows(model, field, pairs):
    """Set one column for many rows: pairs of (value, primary key)."""
    if not pairs:
        return
    opts = model._meta
    quote = connection.ops.quote_name
    target = opts.get_field(field)
    table, column, pk = quote(opts.db_table), quote(target.column), quote(opts.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for all rows (psycopg's executemany sends one per row): two arrays.
            values, keys = zip(*pairs, strict=True)
            cursor.execute(
                f"UPDATE {table} SET {column} = given.value "
                f"FROM unnest(%s::{target.db_type(connection)}[], %s::{opts.pk.rel_db_type(connection)}[]) "
                f"AS given(value, pk) WHERE {table}.{pk} = given.pk",
                [list(values), list(keys)])
            return
        cursor.executemany(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", list(pairs))


class TableStatistics:
    """Keeps PostgreSQL's statistics of the tables an import writes in step with what it wrote.

    PostgreSQL plans by statistics that autovacuum refreshes only some time after a bulk load, and
    a table that was just filled still looks empty to the planner: the importers' per-batch lookups
    (the boxes of a batch's images, the proposals of a model version) then scan everything written
    so far, each batch slower than the one before (a 250,000-line import took twice as long). As
    PostgreSQL's guide on populating a database advises, the tables are analyzed once the import
    has read STATISTICS_AFTER_LINES lines and again at its end. SQLite plans these lookups by
    their indexes without statistics: nothing to do there.
    """

    def __init__(self, *models):
        self.models, self.refreshed_midway = models, False

    def lines_read(self, count):
        if not self.refreshed_midway and count >= STATISTICS_AFTER_LINES:
            self.refreshed_midway = True
            self.refresh()

    def finished(self, count):
        if count >= STATISTICS_AFTER_LINES:
            self.refresh()

    def refresh(self):
        if connection.vendor != "postgresql":
            return
        quote = connection.ops.quote_name
        # ANALYZE may run inside a transaction (an outer atomic block); it reads a sample of rows.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(quote(model._meta.db_table) for model in self.models))


def _same(value):
    return value


def _adapt(field):
    if isinstance(field, DateTimeField):
        return connection.ops.adapt_datetimefield_value
    return _same
