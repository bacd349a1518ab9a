import { Anchor, Badge, Button, Group, Loader, Modal, NumberInput, Select, Stack, Table, Tabs, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";

import { enc, fnPath, get, patch } from "../api/client";
import type { Environment, FunctionInfo, Gateway, GatewayEvent, Tier } from "../api/types";
import { prefetchEditorWhenIdle } from "../editor/prefetch";
import { ConditionText, Copyable, ErrorAlert, PhaseBadge, errorText, when, TableHead } from "../components/common";
import { GatewayActions, TIER_HELP, pollInterval } from "./Gateways";
import { LogsPanel } from "./Logs";
import { MetricsPanel } from "./Metrics";
import { VariablesPanel } from "./Variables";

export function useGateway(gw: string) {
  return useQuery({
    queryKey: ["gateways", gw],
    queryFn: ({ signal }) => get<Gateway>(`/v1/api-gateways/${enc(gw)}`, signal),
    refetchInterval: (query) => pollInterval(query.state.data ? [query.state.data] : undefined),
  });
}

export function useFunctions(gw: string) {
  return useQuery({
    queryKey: ["functions", gw],
    queryFn: ({ signal }) => get<FunctionInfo[]>(`/v1/api-gateways/${enc(gw)}/functions`, signal),
  });
}

function TierBadge({ tier }: { tier: Tier }) {
  return (
    <Tooltip label={TIER_HELP[tier]} multiline w={360} withArrow>
      <Badge color={tier === "shared" ? "grape" : "indigo"} variant="outline" data-tier={tier}>
        {tier} tier
      </Badge>
    </Tooltip>
  );
}

/** Where an environment runs now: the shared replicas it is loaded on, idle, or its own replicas. */
function LoadedOnCell({ environment }: { environment: Environment }) {
  if (environment.tier === "dedicated") {
    return (
      <Text size="xs" c="dimmed">
        own replicas
      </Text>
    );
  }
  if (!environment.loadedOn.length) {
    return (
      <Text size="xs" c="dimmed">
        idle (not loaded)
      </Text>
    );
  }
  return (
    <Group gap={4}>
      {environment.loadedOn.map((where) => (
        <Tooltip key={where.replica} label={`replica ${where.replica} on node ${where.node}`} withArrow>
          <Badge variant="light" color="teal" data-replica={where.replica}>
            {where.replica.slice(0, 8)}
          </Badge>
        </Tooltip>
      ))}
    </Group>
  );
}

/** Moves the gateway to the other tier; the API keeps answering calls while it moves. */
function MoveTier({ gateway }: { gateway: Gateway }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const target: Tier = gateway.bundle.tier === "shared" ? "dedicated" : "shared";
  // custom resources need the dedicated tier: a move to shared leaves them behind
  const { resources, ...sizing } = gateway.bundle;
  const dropsResources = target === "shared" && Object.keys(resources ?? {}).length > 0;
  const bundle = { ...(target === "shared" ? sizing : gateway.bundle), tier: target };
  const move = useMutation({
    mutationFn: () => patch<Gateway>(`/v1/api-gateways/${enc(gateway.gatewayId)}`, { bundle }),
    onSuccess: () => {
      setConfirming(false);
      notifications.show({ title: "Moving", message: `${gateway.gatewayId}: moving to the ${target} tier; calls keep being answered` });
      queryClient.invalidateQueries({ queryKey: ["gateways"] });
    },
    onError: (e) => notifications.show({ color: "red", title: `Could not move ${gateway.gatewayId}`, message: errorText(e) }),
  });
  const deleting = gateway.state === "Deleted" || gateway.phase === "Deleting";
  return (
    <>
      <Button size="xs" variant="default" disabled={deleting} onClick={() => setConfirming(true)} aria-label={`Move ${gateway.gatewayId} to the ${target} tier`}>
        Move to {target}
      </Button>
      <Modal opened={confirming} onClose={() => setConfirming(false)} title={`Move ${gateway.name} to the ${target} tier?`}>
        <Stack>
          <Text size="sm">{TIER_HELP[target]}</Text>
          <Text size="sm">The new tier serves before the old one lets go, so calls keep being answered during the move.</Text>
          {dropsResources && <Text size="sm">The bundle's custom resources are dropped: shared replicas hold none.</Text>}
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirming(false)}>
              Cancel
            </Button>
            <Button loading={move.isPending} onClick={() => move.mutate()}>
              Move to {target}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function EnvironmentRow({ gw, environment }: { gw: string; environment: Environment }) {
  const queryClient = useQueryClient();
  const [authType, setAuthType] = useState<string>(environment.authType);
  const [count, setCount] = useState<number | string>(environment.rateLimit?.count ?? "");
  const [windowSeconds, setWindowSeconds] = useState<number | string>(environment.rateLimit?.windowSeconds ?? 60);
  const save = useMutation({
    mutationFn: () =>
      patch<Environment>(`/v1/api-gateways/${enc(gw)}/environments/${environment.name}`, {
        authType,
        rateLimit: count === "" ? null : { count: Number(count), windowSeconds: Number(windowSeconds) },
      }),
    onSuccess: () => {
      notifications.show({ title: "Saved", message: `${environment.name}: settings applied` });
      queryClient.invalidateQueries({ queryKey: ["gateways", gw] });
    },
    onError: (e) => notifications.show({ color: "red", title: `Could not change ${environment.name}`, message: errorText(e) }),
  });
  return (
    <Table.Tr data-environment={environment.name}>
      <Table.Td fw={500}>{environment.name}</Table.Td>
      <Table.Td>
        <PhaseBadge phase={environment.phase} conditions={environment.conditions} />
        <ConditionText conditions={environment.conditions} />
      </Table.Td>
      <Table.Td>
        <LoadedOnCell environment={environment} />
      </Table.Td>
      <Table.Td>
        <Copyable value={environment.url} label={`Copy the URL of ${environment.name}`} />
      </Table.Td>
      <Table.Td>
        <Select
          aria-label={`Auth mode of ${environment.name}`}
          w={130}
          size="xs"
          data={[
            { value: "key-auth", label: "API key" },
            { value: "none", label: "Public" },
          ]}
          value={authType}
          onChange={(v) => v && setAuthType(v)}
          allowDeselect={false}
        />
      </Table.Td>
      <Table.Td>
        <Group gap={4} wrap="nowrap">
          <NumberInput aria-label={`Rate limit count of ${environment.name}`} placeholder="none" size="xs" w={90} min={1} value={count} onChange={setCount} />
          <Text size="xs">per</Text>
          <NumberInput aria-label={`Rate limit window (s) of ${environment.name}`} size="xs" w={80} min={1} value={windowSeconds} onChange={setWindowSeconds} />
          <Text size="xs">s</Text>
        </Group>
      </Table.Td>
      <Table.Td>
        <Button size="xs" variant="light" loading={save.isPending} onClick={() => save.mutate()} aria-label={`Save ${environment.name}`}>
          Save
        </Button>
      </Table.Td>
    </Table.Tr>
  );
}

function FunctionsPanel({ gw }: { gw: string }) {
  const functions = useFunctions(gw);
  const navigate = useNavigate();
  const listed = functions.isSuccess;
  useEffect(() => (listed ? prefetchEditorWhenIdle() : undefined), [listed]);
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Functions are drafts until published to an environment.
        </Text>
        <Button onClick={() => navigate(`/gateways/${enc(gw)}/new-function`)}>New function</Button>
      </Group>
      <ErrorAlert error={functions.error} />
      {functions.isPending ? (
        <Loader aria-label="Loading functions" />
      ) : functions.data?.length === 0 ? (
        <Text c="dimmed">No function yet.</Text>
      ) : (
        <Table striped data-testid="function-table">
          <TableHead columns={["Function", "Draft", "Published", "Updated"]} />
          <Table.Tbody>
            {functions.data?.map((f) => (
              <Table.Tr key={f.name}>
                <Table.Td>
                  <Anchor component={Link} to={`/gateways/${enc(gw)}/functions/${fnPath(f.name)}`}>
                    {f.name}
                  </Anchor>
                  {f.description && (
                    <Text size="xs" c="dimmed" lineClamp={1}>
                      {f.description}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>v{f.version}</Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    {Object.entries(f.published).map(([env, p]) => (
                      <Badge key={env} variant="outline" color={p.version === f.version ? "green" : "yellow"}>
                        {env} v{p.version}
                      </Badge>
                    ))}
                  </Group>
                </Table.Td>
                <Table.Td>
                  <Text size="xs">{when(f.updatedAt)}</Text>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

function EventsPanel({ gw }: { gw: string }) {
  const events = useQuery({
    queryKey: ["events", gw],
    queryFn: ({ signal }) => get<GatewayEvent[]>(`/v1/api-gateways/${enc(gw)}/events?limit=50`, signal),
    refetchInterval: 3000,
  });
  return (
    <Stack>
      <ErrorAlert error={events.error} />
      <Table striped>
        <TableHead columns={["When", "Resource", "Change", "Message"]} />
        <Table.Tbody>
          {events.data?.map((e, i) => (
            <Table.Tr key={String(e.id ?? i)}>
              <Table.Td>
                <Text size="xs">{when(String(e.at ?? ""))}</Text>
              </Table.Td>
              <Table.Td>{String(e.resource ?? "")}</Table.Td>
              <Table.Td>
                {e.from || e.to ? `${String(e.from ?? "")} → ${String(e.to ?? "")}` : String(e.type ?? "")}
              </Table.Td>
              <Table.Td>
                <Text size="xs">{String(e.reason ?? "")} {String(e.message ?? "")}</Text>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

export function GatewayPage() {
  const { gw = "" } = useParams();
  const [search, setSearch] = useSearchParams();
  const gateway = useGateway(gw);
  const navigate = useNavigate();
  const tab = search.get("tab") ?? "functions";
  if (gateway.isPending) return <Loader aria-label="Loading the gateway" />;
  if (!gateway.data) return <ErrorAlert error={gateway.error} />;
  const g = gateway.data;
  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={2}>{g.name}</Title>
          <PhaseBadge phase={g.phase} conditions={g.conditions} />
          <TierBadge tier={g.bundle.tier} />
          <Text size="sm" c="dimmed">
            {g.gatewayId}
          </Text>
        </Group>
        <Group gap="xs" wrap="nowrap">
          <MoveTier gateway={g} />
          <GatewayActions gateway={g} onDeleted={() => navigate("/")} />
        </Group>
      </Group>
      <ConditionText conditions={g.conditions} />
      <Tabs value={tab} onChange={(value) => setSearch(value ? { tab: value } : {})} keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="functions">Functions</Tabs.Tab>
          <Tabs.Tab value="environments">Environments</Tabs.Tab>
          <Tabs.Tab value="logs">Logs</Tabs.Tab>
          <Tabs.Tab value="variables">Variables</Tabs.Tab>
          <Tabs.Tab value="metrics">Metrics</Tabs.Tab>
          <Tabs.Tab value="events">Events</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="functions" pt="md">
          <FunctionsPanel gw={gw} />
        </Tabs.Panel>
        <Tabs.Panel value="environments" pt="md">
          <Table data-testid="environment-table">
            <TableHead columns={["Environment", "Phase", "Loaded on", "URL", "Auth", "Rate limit", "Actions"]} />
            <Table.Tbody>
              {g.environments.map((e) => (
                <EnvironmentRow key={`${e.name}-${e.authType}-${e.rateLimit?.count}`} gw={gw} environment={e} />
              ))}
            </Table.Tbody>
          </Table>
        </Tabs.Panel>
        <Tabs.Panel value="logs" pt="md">
          <LogsPanel gw={gw} />
        </Tabs.Panel>
        <Tabs.Panel value="variables" pt="md">
          <VariablesPanel gw={gw} />
        </Tabs.Panel>
        <Tabs.Panel value="metrics" pt="md">
          <MetricsPanel gw={gw} />
        </Tabs.Panel>
        <Tabs.Panel value="events" pt="md">
          <EventsPanel gw={gw} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
