import { Anchor, Button, Group, Stack, Table, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";

import { enc, get } from "../api/client";
import type { GatewayMetrics } from "../api/types";
import { ErrorAlert, TableHead } from "../components/common";

const ms = (v: number | null) => (v === null ? "—" : `${v.toFixed(v < 10 ? 2 : 0)} ms`);

export function MetricsPanel({ gw }: { gw: string }) {
  const metrics = useQuery({
    queryKey: ["metrics", gw],
    queryFn: ({ signal }) => get<GatewayMetrics>(`/v1/api-gateways/${enc(gw)}/metrics`, signal),
    refetchInterval: 10000,
  });
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Totals since each replica started, from the replicas' Prometheus series (ray_imprun_function_*).
        </Text>
        <Group>
          <Button size="xs" variant="default" onClick={() => metrics.refetch()} loading={metrics.isFetching}>
            Refresh
          </Button>
          {metrics.data && (
            <Anchor href={metrics.data.dashboardUrl} target="_blank" rel="noreferrer" size="sm">
              Ray dashboard (operators)
            </Anchor>
          )}
        </Group>
      </Group>
      <ErrorAlert error={metrics.error} />
      <Table striped data-testid="metrics-table">
        <TableHead columns={["Function", "Environment", "Invocations", "Errors (5xx)", "By status", "Mean", "p50", "p95", "p99"]} />
        <Table.Tbody>
          {metrics.data?.functions.map((f) => (
            <Table.Tr key={`${f.environment}/${f.function}`}>
              <Table.Td>{f.function}</Table.Td>
              <Table.Td>{f.environment}</Table.Td>
              <Table.Td>{f.invocations}</Table.Td>
              <Table.Td c={f.errors ? "red" : undefined}>{f.errors}</Table.Td>
              <Table.Td>
                <Text size="xs">
                  {Object.entries(f.byStatusClass)
                    .map(([k, v]) => `${k}: ${v}`)
                    .join(", ")}
                </Text>
              </Table.Td>
              <Table.Td>{ms(f.latency.meanMs)}</Table.Td>
              <Table.Td>{ms(f.latency.p50Ms)}</Table.Td>
              <Table.Td>{ms(f.latency.p95Ms)}</Table.Td>
              <Table.Td>{ms(f.latency.p99Ms)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {metrics.data?.functions.length === 0 && <Text c="dimmed">No call recorded yet.</Text>}
    </Stack>
  );
}
