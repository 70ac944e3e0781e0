"""The Strawberry schema with its guards: depth, tokens, aliases, query cost, error codes, caches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from functools import lru_cache, partial
from typing import Any

import strawberry
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.str_converters import to_camel_case

from app.errors import DomainError
from app.settings import Settings
from schema.context import PortalContext
from schema.errors import QueryTooCostly, portal_error
from schema.query import Query
from schema.types import Breakdown, Sex, data_request

# Defaults for the SDL export and for tests; a served schema takes its limits from the settings.
EXPORT_SETTINGS = Settings(environment="development")


class QueryCost(SchemaExtension):
    """Refuses, before anything is read, an operation whose top-level observations alone ask for more
    cells than one request may (count_cells, the model of REST's cap). Nested observations, whose area
    count is known only as they run, are charged against the same budget by their loader."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, PortalContext) and execution.result is None:
            cells = await _top_level_cells(execution, context)
            if cells > context.settings.max_cells:
                problem = QueryTooCostly(cells, context.settings.max_cells)
                execution.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(problem.detail, original_error=problem)]
                )
        yield


async def _top_level_cells(execution: ExecutionContext, context: PortalContext) -> int:
    document = execution.graphql_document
    schema = execution.schema._schema
    if document is None or schema.query_type is None:
        return 0
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if execution.operation_name:
        operations = [o for o in operations if o.name and o.name.value == execution.operation_name]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return 0
    operation = operations[0]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    variables = get_variable_values(schema, operation.variable_definitions or (), execution.variables or {})
    if isinstance(variables, list):
        return 0  # invalid variables: execution reports them
    definition = schema.query_type.fields["observations"]
    total = 0
    for node in _root_fields(operation.selection_set, fragments, set()):
        if node.name.value != "observations":
            continue
        try:
            args: dict[str, Any] = get_argument_values(definition, node, variables)
            request = data_request(
                args["indicator"],
                args["geography"],
                args.get("areas"),
                args["periods"],
                Sex(args["sex"]) if args.get("sex") else None,
                args.get("age"),
                [Breakdown(b) for b in args.get("by") or ()],
                args.get("release"),
                args.get("parent"),
                args.get("level"),
            )
            query = await context.store(partial(context.data.query, request))
            total += await context.cost(query)
        except (DomainError, GraphQLError, KeyError, ValueError):
            continue  # a bad argument: the field's resolver reports it with its code
    return total


def _root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> list[FieldNode]:
    fields: list[FieldNode] = []
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            fields.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            fields.extend(_root_fields(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                fields.extend(_root_fields(fragment.selection_set, fragments, seen))
    return fields


class RememberedNames(NameConverter):
    """Strawberry names each argument of a field every time the field runs (332 times for the
    communes of a mobile screen); the names are few, so each is converted once."""

    def apply_naming_config(self, name: str) -> str:
        return _camel_case(name) if self.auto_camel_case else name


@lru_cache(maxsize=4096)
def _camel_case(name: str) -> str:
    return to_camel_case(name)


class PortalSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Every error leaves with a code, whichever stage raised it (an extension's hook included)."""
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        if result.errors:
            result.errors = [portal_error(e) for e in result.errors]
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Domain errors and refused queries are answers, not failures: only the rest is logged.
        failures = [
            e
            for e in errors
            if e.original_error is not None and not isinstance(e.original_error, DomainError | GraphQLError)
        ]
        super().process_errors(failures, execution_context)


def build_schema(settings: Settings = EXPORT_SETTINGS) -> strawberry.Schema:
    """The schema as served. Extensions are factories, so each request gets its own instances."""
    # The limiters' rule classes are made once: the validation cache is keyed by them.
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=settings.graphql_cache_size),
        lambda: ValidationCache(maxsize=settings.graphql_cache_size),
        QueryCost,
    ]
    return PortalSchema(
        query=Query, extensions=extensions, config=StrawberryConfig(name_converter=RememberedNames())
    )


def sdl() -> str:
    """The schema in SDL, as exported to schema/schema.graphql."""
    return build_schema().as_str() + "\n"
