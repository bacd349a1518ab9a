import { Anchor, Button, Group, Loader, Modal, NumberInput, Radio, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";

import { del, enc, get, patch, post } from "../api/client";
import type { Gateway, Tier } from "../api/types";
import { ConditionText, ErrorAlert, PhaseBadge, errorText, TableHead } from "../components/common";

/** Gateways move through phases on their own: poll while any is in motion, slowly otherwise. */
export function pollInterval(gateways: Gateway[] | undefined): number {
  const settled = (p: string) => p === "Started" || p === "Stopped";
  const moving = gateways?.some((g) => !settled(g.phase) || g.environments.some((e) => !settled(e.phase)));
  return moving ? 1000 : 5000;
}

/** What each tier means to the one choosing it (README, "Tiers"). */
export const TIER_HELP: Record<Tier, string> = {
  shared: "Loaded on demand into the platform's shared runtime and unloaded when idle: an idle gateway costs nothing, and the first call after idle loads it.",
  dedicated: "Each environment has its own always-warm replicas, sized by the bundle (CPU, memory, replicas).",
};

export function useGateways() {
  return useQuery({
    queryKey: ["gateways"],
    queryFn: ({ signal }) => get<Gateway[]>("/v1/api-gateways", signal),
    refetchInterval: (query) => pollInterval(query.state.data),
  });
}

export function GatewayActions({ gateway, onDeleted }: { gateway: Gateway; onDeleted?: () => void }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const invalidate = () => queryClient.invalidateQueries({ queryKey: ["gateways"] });
  const setState = useMutation({
    mutationFn: (state: "Running" | "Stopped") => patch<Gateway>(`/v1/api-gateways/${enc(gateway.gatewayId)}`, { state }),
    onSuccess: invalidate,
    onError: (e) => notifications.show({ color: "red", title: "Could not change the gateway", message: errorText(e) }),
  });
  const remove = useMutation({
    mutationFn: () => del<Gateway>(`/v1/api-gateways/${enc(gateway.gatewayId)}`),
    onSuccess: () => {
      setConfirming(false);
      notifications.show({ title: "Deleting", message: `${gateway.gatewayId}: removing its applications, database and records…` });
      invalidate();
      onDeleted?.();
    },
  });
  const deleting = gateway.state === "Deleted" || gateway.phase === "Deleting";
  return (
    <Group gap="xs" wrap="nowrap">
      {gateway.state === "Running" ? (
        <Button size="xs" variant="default" disabled={deleting} loading={setState.isPending} onClick={() => setState.mutate("Stopped")} aria-label={`Stop ${gateway.gatewayId}`}>
          Stop
        </Button>
      ) : (
        <Button size="xs" variant="default" disabled={deleting} loading={setState.isPending} onClick={() => setState.mutate("Running")} aria-label={`Start ${gateway.gatewayId}`}>
          Start
        </Button>
      )}
      <Button size="xs" color="red" variant="light" disabled={deleting} onClick={() => setConfirming(true)} aria-label={`Delete ${gateway.gatewayId}`}>
        {deleting ? "Deleting…" : "Delete"}
      </Button>
      <Modal opened={confirming} onClose={() => setConfirming(false)} title={`Delete ${gateway.name}?`}>
        <Stack>
          <Text size="sm">
            This removes the gateway's three environments, its database, functions, variables and the grants on it.
            It cannot be undone.
          </Text>
          <ErrorAlert error={remove.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirming(false)}>
              Cancel
            </Button>
            <Button color="red" loading={remove.isPending} onClick={() => remove.mutate()}>
              Delete {gateway.gatewayId}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Group>
  );
}

function CreateGateway({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const [name, setName] = useState("");
  const [gatewayId, setGatewayId] = useState("");
  const [tier, setTier] = useState<Tier>("shared");
  const [bundle, setBundle] = useState({ cpu: 0.25, memory: 256, minReplicas: 1, maxReplicas: 1 });
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: () =>
      post<Gateway>("/v1/api-gateways", {
        name,
        gatewayId: gatewayId || undefined,
        // the sizing does not apply on the shared tier
        bundle: tier === "shared" ? { tier } : { tier, ...bundle },
      }),
    onSuccess: (gateway) => {
      queryClient.invalidateQueries({ queryKey: ["gateways"] });
      onClose();
      navigate(`/gateways/${enc(gateway.gatewayId)}`);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Modal opened={opened} onClose={onClose} title="Create a gateway">
      <form onSubmit={submit}>
        <Stack>
          <TextInput label="Name" required value={name} onChange={(e) => setName(e.currentTarget.value)} data-autofocus />
          <TextInput label="Gateway id" description="DNS-safe; derived from the name when empty" value={gatewayId} onChange={(e) => setGatewayId(e.currentTarget.value)} />
          <Radio.Group label="Tier" value={tier} onChange={(v) => setTier(v as Tier)}>
            <Stack gap="xs" mt={4}>
              <Radio value="shared" label="Shared" description={TIER_HELP.shared} />
              <Radio value="dedicated" label="Dedicated" description={TIER_HELP.dedicated} />
            </Stack>
          </Radio.Group>
          {tier === "dedicated" && (
            <>
              <Group grow>
                <NumberInput label="CPU per replica" min={0.01} step={0.05} decimalScale={2} value={bundle.cpu} onChange={(v) => setBundle({ ...bundle, cpu: Number(v) })} />
                <NumberInput label="Memory (MiB)" min={64} step={64} value={bundle.memory} onChange={(v) => setBundle({ ...bundle, memory: Number(v) })} />
              </Group>
              <Group grow>
                <NumberInput label="Min replicas" min={0} value={bundle.minReplicas} onChange={(v) => setBundle({ ...bundle, minReplicas: Number(v) })} />
                <NumberInput label="Max replicas" min={1} value={bundle.maxReplicas} onChange={(v) => setBundle({ ...bundle, maxReplicas: Number(v) })} />
              </Group>
            </>
          )}
          <ErrorAlert error={create.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export function GatewaysPage() {
  const gateways = useGateways();
  const [creating, setCreating] = useState(false);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Gateways</Title>
        <Button onClick={() => setCreating(true)}>Create gateway</Button>
      </Group>
      <ErrorAlert error={gateways.error} />
      {gateways.isPending ? (
        <Loader aria-label="Loading gateways" />
      ) : gateways.data?.length === 0 ? (
        <Text c="dimmed">No gateway yet. Create one: it gets a database and three environments (dev, staging, prod).</Text>
      ) : (
        <Table striped highlightOnHover data-testid="gateway-table">
          <TableHead columns={["Gateway", "Phase", "Environments", "Actions"]} />
          <Table.Tbody>
            {gateways.data?.map((g) => (
              <Table.Tr key={g.gatewayId} data-gateway={g.gatewayId}>
                <Table.Td>
                  <Anchor component={Link} to={`/gateways/${enc(g.gatewayId)}`} fw={500}>
                    {g.name}
                  </Anchor>
                  <Text size="xs" c="dimmed">
                    {g.gatewayId}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <PhaseBadge phase={g.phase} conditions={g.conditions} />
                  <ConditionText conditions={g.conditions} />
                </Table.Td>
                <Table.Td>
                  <Group gap={6}>
                    {g.environments.map((e) => (
                      <Group key={e.name} gap={2}>
                        <Text size="xs">{e.name}</Text>
                        <PhaseBadge phase={e.phase} conditions={e.conditions} />
                      </Group>
                    ))}
                  </Group>
                  {g.environments.map((e) => (
                    <ConditionText key={e.name} conditions={e.conditions} />
                  ))}
                </Table.Td>
                <Table.Td>
                  <GatewayActions gateway={g} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <CreateGateway opened={creating} onClose={() => setCreating(false)} />
    </Stack>
  );
}
