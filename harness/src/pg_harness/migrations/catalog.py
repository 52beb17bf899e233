"""A snapshot of the public schema's definitions, read from pg_catalog, and its differences.

Why not `pg_dump --schema-only` and a text diff: recent pg_dump writes a random
`\\restrict` key into every dump, so two dumps of one schema never match; and a text diff
reports moved lines, OIDs and dump order along with the real change. A snapshot here is
kind → object name → normalised definition, read in one query: names are the keys, and
anything whose order does not matter (enum labels aside) is sorted in SQL, so equal
schemas give equal snapshots whatever their OIDs or the order they were created in.

Covered: tables (with column order, inheritance, partitioning, row-level security),
columns (type, collation, NOT NULL, default, identity and its sequence, generation),
indexes, constraints, sequences (not their current value), functions, procedures,
aggregates, enum/domain/composite/range types, views, materialized views, triggers,
rules, policies, statistics objects, comments, non-default privileges, and, database-wide,
extensions, event triggers and the existence of other schemas. Not covered: objects
inside other schemas, owners, collations, operators, casts, text search, foreign servers,
publications. Extension members are left to their extension's line, and the alembic_version
table to Alembic, which creates it and never drops it.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Catalog = dict[str, dict[str, str]]

KINDS = (
    "table",
    "column",
    "index",
    "constraint",
    "sequence",
    "function",
    "procedure",
    "aggregate",
    "enum type",
    "domain",
    "composite type",
    "range type",
    "view",
    "materialized view",
    "trigger",
    "rule",
    "policy",
    "statistics object",
    "comment",
    "privileges",
    "extension",
    "event trigger",
    "schema",
)

# Objects of the public schema, less those made as part of another (deptype 'i': an
# identity column's sequence, a constraint's index, a range type's constructors, array
# and row types) or by an extension ('e'): their owner's definition describes them.
_OBJECTS = """
rel AS (
    SELECT c.* FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relname <> 'alembic_version'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('e', 'i'))
),
routine AS (
    SELECT p.* FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype IN ('e', 'i'))
),
typ AS (
    SELECT t.* FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype IN ('e', 'i'))
)
"""

# Sequence parameters, from pg_sequence aliased `s`; the current value is data, not schema.
_SEQUENCE_OPTIONS = """format(
    'AS %s START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s %s',
    format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
    s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END)"""

# Each returns (kind, name, definition). Names are quote_ident'ed, so `a.b` is unambiguous.
_QUERIES = (
    """SELECT 'table', quote_ident(c.relname), concat_ws(' ',
        CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED' END,
        CASE c.relkind WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'f' THEN 'FOREIGN TABLE'
                       ELSE 'TABLE' END,
        '(' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) || ')',
        (SELECT CASE WHEN c.relispartition
                     THEN 'PARTITION OF ' || min(i.inhparent::regclass::text) || ' '
                          || pg_get_expr(c.relpartbound, c.oid)
                     ELSE 'INHERITS (' || string_agg(i.inhparent::regclass::text, ', '
                                                     ORDER BY i.inhseqno) || ')' END
         FROM pg_inherits i WHERE i.inhrelid = c.oid),
        'PARTITION BY ' || pg_get_partkeydef(c.oid),
        'WITH (' || (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(c.reloptions) o) || ')',
        CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END,
        CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END,
        CASE c.relreplident WHEN 'n' THEN 'REPLICA IDENTITY NOTHING'
            WHEN 'f' THEN 'REPLICA IDENTITY FULL' WHEN 'i' THEN 'REPLICA IDENTITY USING INDEX' END)
    FROM rel c WHERE c.relkind IN ('r', 'p', 'f')""",
    # An identity column's sequence is described here, with the column.
    f"""SELECT 'column', format('%I.%I', c.relname, a.attname), concat_ws(' ',
        format_type(a.atttypid, a.atttypmod),
        CASE WHEN a.attcollation <> t.typcollation
             THEN 'COLLATE ' || a.attcollation::regcollation::text END,
        CASE WHEN a.attnotnull THEN 'NOT NULL' END,
        CASE a.attgenerated
            WHEN 's' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
            WHEN 'v' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') VIRTUAL'
            ELSE 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) END,
        CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY '
                           WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY ' END
            || (SELECT format('(SEQUENCE NAME %I %s)', q.relname, {_SEQUENCE_OPTIONS})
                FROM pg_depend dep
                JOIN pg_class q ON q.oid = dep.objid
                JOIN pg_sequence s ON s.seqrelid = q.oid
                WHERE dep.classid = 'pg_class'::regclass AND dep.deptype = 'i'
                  AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = c.oid
                  AND dep.refobjsubid = a.attnum))
    FROM rel c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p', 'f')""",
    """SELECT 'index', quote_ident(x.relname), concat_ws(' ', pg_get_indexdef(i.indexrelid),
        CASE WHEN i.indisclustered THEN '(CLUSTER)' END,
        CASE WHEN NOT i.indisvalid THEN '(INVALID)' END)
    FROM pg_index i JOIN rel x ON x.oid = i.indexrelid JOIN rel c ON c.oid = i.indrelid""",
    """SELECT 'constraint', format('%I.%I', c.relname, k.conname), pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN rel c ON c.oid = k.conrelid""",
    f"""SELECT 'sequence', quote_ident(c.relname), concat_ws(' ', {_SEQUENCE_OPTIONS},
        (SELECT format('OWNED BY %I.%I', t.relname, a.attname)
         FROM pg_depend d
         JOIN pg_class t ON t.oid = d.refobjid
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
           AND d.refclassid = 'pg_class'::regclass))
    FROM rel c JOIN pg_sequence s ON s.seqrelid = c.oid""",
    # pg_get_functiondef refuses aggregates: those are described from pg_aggregate.
    """SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                             ELSE 'function' END,
        format('%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
        CASE WHEN p.prokind = 'a' THEN format(
            '(SFUNC = %s, STYPE = %s, FINALFUNC = %s, COMBINEFUNC = %s, INITCOND = %L, '
            'KIND = %s) RETURNS %s', g.aggtransfn, format_type(g.aggtranstype, NULL),
            g.aggfinalfn, g.aggcombinefn, g.agginitval, g.aggkind,
            pg_get_function_result(p.oid))
        ELSE pg_get_functiondef(p.oid) END
    FROM routine p LEFT JOIN pg_aggregate g ON g.aggfnoid = p.oid""",
    # Labels in their sort order: that order is part of the type.
    """SELECT 'enum type', quote_ident(t.typname), '(' || coalesce((
        SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
        FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
    FROM typ t WHERE t.typtype = 'e'""",
    """SELECT 'domain', quote_ident(t.typname), concat_ws(' ',
        format_type(t.typbasetype, t.typtypmod),
        CASE WHEN t.typcollation <> b.typcollation
             THEN 'COLLATE ' || t.typcollation::regcollation::text END,
        'DEFAULT ' || t.typdefault,
        CASE WHEN t.typnotnull THEN 'NOT NULL' END,
        (SELECT string_agg(format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)),
                           ' ' ORDER BY k.conname)
         FROM pg_constraint k WHERE k.contypid = t.oid))
    FROM typ t JOIN pg_type b ON b.oid = t.typbasetype WHERE t.typtype = 'd'""",
    """SELECT 'composite type', quote_ident(t.typname), '(' || coalesce((
        SELECT string_agg(concat_ws(' ', quote_ident(a.attname),
                                    format_type(a.atttypid, a.atttypmod),
                                    CASE WHEN a.attcollation <> at.typcollation
                                         THEN 'COLLATE ' || a.attcollation::regcollation::text
                                    END), ', ' ORDER BY a.attnum)
        FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')'
    FROM typ t JOIN pg_class c ON c.oid = t.typrelid WHERE t.typtype = 'c' AND c.relkind = 'c'""",
    # The multirange type and the constructors come with the range type.
    """SELECT 'range type', quote_ident(t.typname), format(
        '(SUBTYPE = %s, SUBTYPE_OPCLASS = %I, COLLATION = %s, CANONICAL = %s, '
        'SUBTYPE_DIFF = %s, MULTIRANGE_TYPE_NAME = %s)',
        format_type(r.rngsubtype, NULL), o.opcname, r.rngcollation::regcollation,
        r.rngcanonical, r.rngsubdiff, r.rngmultitypid::regtype)
    FROM typ t JOIN pg_range r ON r.rngtypid = t.oid JOIN pg_opclass o ON o.oid = r.rngsubopc""",
    """SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
        quote_ident(c.relname), concat_ws(' ', pg_get_viewdef(c.oid),
        'WITH (' || (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(c.reloptions) o) || ')')
    FROM rel c WHERE c.relkind IN ('v', 'm')""",
    # Internal triggers implement foreign keys, which are compared as constraints.
    """SELECT 'trigger', format('%I.%I', c.relname, g.tgname), concat_ws(' ',
        pg_get_triggerdef(g.oid), CASE g.tgenabled WHEN 'D' THEN '(DISABLED)'
            WHEN 'R' THEN '(ENABLE REPLICA)' WHEN 'A' THEN '(ENABLE ALWAYS)' END)
    FROM pg_trigger g JOIN rel c ON c.oid = g.tgrelid WHERE NOT g.tgisinternal""",
    """SELECT 'rule', format('%I.%I', c.relname, r.rulename), pg_get_ruledef(r.oid)
    FROM pg_rewrite r JOIN rel c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'""",
    """SELECT 'policy', format('%I.%I', c.relname, p.polname), concat_ws(' ',
        CASE WHEN p.polpermissive THEN 'AS PERMISSIVE' ELSE 'AS RESTRICTIVE' END,
        'FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
            WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
        'TO ' || (SELECT string_agg(n, ', ' ORDER BY n) FROM (
            SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
            FROM unnest(p.polroles) r) AS roles(n)),
        'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
        'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
    FROM pg_policy p JOIN rel c ON c.oid = p.polrelid""",
    """SELECT 'statistics object', quote_ident(s.stxname), pg_get_statisticsobjdef(s.oid)
    FROM pg_statistic_ext s JOIN rel c ON c.oid = s.stxrelid""",
    # Built-in objects (OIDs below 16384, FirstNormalObjectId) have thousands of comments:
    # skipping them first spares pg_identify_object a call for each.
    """SELECT 'comment', format('on %s %s', o.type, o.identity), d.description
    FROM pg_description d CROSS JOIN pg_identify_object(d.classoid, d.objoid, d.objsubid) o
    WHERE d.objoid >= 16384 AND o.schema = 'public'
      AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = d.classoid
                      AND x.objid = d.objoid AND x.deptype = 'e')""",
    # An ACL reset to its default by REVOKE is no longer NULL: compare it to acldefault.
    """SELECT 'privileges', format('on %s %s', kind, name), coalesce(granted, '(none)') FROM (
        SELECT kind, name,
            (SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(acl) a) AS granted,
            (SELECT string_agg(a::text, ' ' ORDER BY a::text)
             FROM unnest(acldefault(code, owner)) a) AS by_default
        FROM (
            SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                       WHEN 'm' THEN 'materialized view' ELSE 'table' END,
                   quote_ident(c.relname), c.relacl,
                   CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner
            FROM rel c WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
            UNION ALL
            SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
                   format('%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
                   p.proacl, 'f', p.proowner
            FROM routine p
            UNION ALL
            SELECT 'type', quote_ident(t.typname), t.typacl, 'T', t.typowner
            FROM typ t WHERE t.typtype IN ('e', 'd', 'c', 'r')
            UNION ALL
            SELECT 'schema', 'public', n.nspacl, 'n', n.nspowner
            FROM pg_namespace n WHERE n.nspname = 'public'
        ) AS objects(kind, name, acl, code, owner)
        WHERE acl IS NOT NULL
    ) AS privileges WHERE granted IS DISTINCT FROM by_default""",
    # Database-wide, and left behind by a downgrade just as well. plpgsql comes with
    # every database.
    """SELECT 'extension', quote_ident(e.extname),
        format('version %s in schema %s', e.extversion, e.extnamespace::regnamespace)
    FROM pg_extension e WHERE e.extname <> 'plpgsql'""",
    """SELECT 'event trigger', quote_ident(e.evtname), concat_ws(' ', 'ON ' || e.evtevent,
        'WHEN TAG IN (' || (SELECT string_agg(quote_literal(g), ', ' ORDER BY g)
                            FROM unnest(e.evttags) g) || ')',
        'EXECUTE FUNCTION ' || e.evtfoid::regproc::text,
        CASE e.evtenabled WHEN 'D' THEN '(DISABLED)' WHEN 'R' THEN '(ENABLE REPLICA)'
            WHEN 'A' THEN '(ENABLE ALWAYS)' END)
    FROM pg_event_trigger e""",
    """SELECT 'schema', quote_ident(n.nspname), 'AUTHORIZATION ' || pg_get_userbyid(n.nspowner)
    FROM pg_namespace n
    WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('public', 'information_schema')""",
)

_SNAPSHOT = text(f"WITH {_OBJECTS}\n" + "\nUNION ALL\n".join(f"({query})" for query in _QUERIES))


async def snapshot(connection: AsyncConnection) -> Catalog:
    """The definitions in the current database, by kind (see KINDS) and then by name."""
    catalog: Catalog = {kind: {} for kind in KINDS}
    for kind, name, definition in await connection.execute(_SNAPSHOT):
        # Either would be a bug in a query above, which a silent overwrite would hide.
        if name in catalog[kind]:
            raise ValueError(f"{kind} {name} read twice from the catalog")
        if definition is None:
            raise ValueError(f"{kind} {name} read without a definition")
        catalog[kind][name] = definition
    return catalog


def differences(before: Catalog, after: Catalog) -> list[str]:
    """What changed from `before` to `after`, a line per object, sorted.

    "left behind" is an object only `after` has, "missing" one only `before` has.
    """
    lines = []
    for kind in before.keys() | after.keys():
        was, now = before.get(kind, {}), after.get(kind, {})
        for name in was.keys() | now.keys():
            if name not in now:
                lines.append(f"{kind} {name}: missing (was: {_one_line(was[name])})")
            elif name not in was:
                lines.append(f"{kind} {name}: left behind: {_one_line(now[name])}")
            elif was[name] != now[name]:
                lines.append(f"{kind} {name}: was {_changed(was[name], now[name])}")
    return sorted(lines)


def _one_line(definition: str) -> str:
    # Function bodies and view queries span lines; the report has one line per object.
    return " ".join(definition.split())


def _changed(was: str, now: str) -> str:
    shown_was, shown_now = _one_line(was), _one_line(now)
    if shown_was == shown_now:  # they differ in whitespace only: show it
        shown_was, shown_now = was, now
    return f"{shown_was!r}, now {shown_now!r}"
