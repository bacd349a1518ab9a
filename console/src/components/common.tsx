// Small shared pieces: API errors with their request id, phase badges, copyable values.

import { Alert, Badge, Button, Code, CopyButton, Group, Table, Text, Tooltip } from "@mantine/core";

import { ApiError } from "../api/client";
import type { Condition, Phase } from "../api/types";

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const requestId = error instanceof ApiError ? error.requestId : undefined;
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <Alert color="red" title={title ?? (code ? `Error: ${code}` : "Error")} role="alert" data-testid="api-error">
      <Text size="sm">{errorText(error)}</Text>
      {requestId && (
        <Text size="xs" c="dimmed" mt={4}>
          Request id: <Code>{requestId}</Code>
        </Text>
      )}
    </Alert>
  );
}

const PHASE_COLORS: Record<string, string> = {
  Creating: "blue",
  Created: "cyan",
  Starting: "blue",
  Started: "green",
  Stopping: "orange",
  Stopped: "gray",
  Deleting: "red",
  Deleted: "dark",
};

export function PhaseBadge({ phase, conditions = [] }: { phase: Phase; conditions?: Condition[] }) {
  const failed = conditions.find((c) => c.type === "Failed" && c.status);
  const badge = (
    <Badge color={failed ? "red" : (PHASE_COLORS[phase] ?? "gray")} variant="light" data-phase={phase}>
      {phase}
      {failed ? ` · ${failed.reason}` : ""}
    </Badge>
  );
  return failed ? (
    <Tooltip label={failed.message || failed.reason} multiline w={360} withArrow>
      {badge}
    </Tooltip>
  ) : (
    badge
  );
}

/** Why a resource waits or failed, from its conditions (shown under a phase). */
export function ConditionText({ conditions }: { conditions: Condition[] }) {
  const shown = conditions.filter((c) => c.message && (c.type === "Failed" ? c.status : !c.status));
  if (!shown.length) return null;
  return (
    <>
      {shown.map((c) => (
        <Text key={`${c.type}-${c.reason}`} size="xs" c={c.type === "Failed" ? "red" : "dimmed"}>
          {c.reason}: {c.message}
        </Text>
      ))}
    </>
  );
}

export function Copyable({ value, label, block = false }: { value: string; label?: string; block?: boolean }) {
  return (
    <Group gap="xs" wrap="nowrap" align={block ? "flex-start" : "center"}>
      <Code block={block} style={{ wordBreak: "break-all", flex: block ? 1 : undefined }}>
        {value}
      </Code>
      <CopyButton value={value}>
        {({ copied, copy }) => (
          <Button size="compact-xs" variant={copied ? "filled" : "light"} color={copied ? "teal" : undefined} onClick={copy} aria-label={label ?? "Copy"}>
            {copied ? "Copied" : "Copy"}
          </Button>
        )}
      </CopyButton>
    </Group>
  );
}

export function when(iso: string | undefined | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A table's header row. */
export function TableHead({ columns }: { columns: string[] }) {
  return (
    <Table.Thead>
      <Table.Tr>
        {columns.map((name, i) => (
          <Table.Th key={`${name}-${i}`}>{name}</Table.Th>
        ))}
      </Table.Tr>
    </Table.Thead>
  );
}
