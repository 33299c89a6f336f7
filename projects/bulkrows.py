"""Inserting many rows without building a model instance per row: what the importers write with.

Django's bulk_create prepares every field of every instance through the field machinery; for the
hundreds of thousands of rows of a manifest that is most of an import's time. insert_rows takes
plain tuples, fills the columns the caller leaves out with their model defaults, adapts datetimes
for the database once per value and sends one executemany per chunk. It returns no ids: callers
read them back by a unique key. Imports nothing from the app.
"""

from django.db import connection
from django.db.models import DateTimeField

CHUNK = 5000


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
    defaults = tuple(_adapt(field)(default) for field, default in zip(rest, defaults, strict=True))
    # Only datetimes need adapting (SQLite stores text); a batch's rows share few distinct ones.
    dated = [index for index, field in enumerate(given) if isinstance(field, DateTimeField)]
    adapted = {}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in [*given, *rest])
    sql = (f"INSERT INTO {quote(opts.db_table)} ({columns}) "
           f"VALUES ({', '.join(['%s'] * (len(given) + len(rest)))})")
    with connection.cursor() as cursor:
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
            _execute(cursor, sql, values)


def update_rows(model, field, pairs):
    """Set one column for many rows: pairs of (value, primary key), one executemany."""
    if not pairs:
        return
    opts = model._meta
    quote = connection.ops.quote_name
    column = opts.get_field(field).column
    sql = (f"UPDATE {quote(opts.db_table)} SET {quote(column)} = %s "
           f"WHERE {quote(opts.pk.column)} = %s")
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(pairs))


def _execute(cursor, sql, values):
    if connection.vendor != "postgresql":
        cursor.executemany(sql, values)
        return
    # psycopg's executemany sends a statement per row: PostgreSQL gets multi-row VALUES instead,
    # within its 65,535 parameters a statement.
    head, row = sql.rsplit(" VALUES ", 1)
    per = max(1, 60_000 // len(values[0]))
    for start in range(0, len(values), per):
        part = values[start:start + per]
        cursor.execute(f"{head} VALUES {', '.join([row] * len(part))}",
                       [value for one in part for value in one])


def _same(value):
    return value


def _adapt(field):
    if isinstance(field, DateTimeField):
        return connection.ops.adapt_datetimefield_value
    return _same
