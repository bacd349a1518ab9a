import { Alert, Badge, Button, Card, Group, Loader, Modal, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { del, enc, get, post } from "../api/client";
import { ENVIRONMENTS, type Application, type FunctionInfo, type Grant, type IssuedGrant } from "../api/types";
import { CallPanel } from "../components/CallPanel";
import { Copyable, ErrorAlert, TableHead, when } from "../components/common";
import { shownKeys } from "../lib/keys";
import { useGateways } from "./Gateways";

function KeyShownOnce({ issued, onClose }: { issued: IssuedGrant | null; onClose: () => void }) {
  const functions = useQuery({
    queryKey: ["functions", issued?.gatewayId],
    queryFn: ({ signal }) => get<FunctionInfo[]>(`/v1/api-gateways/${enc(issued!.gatewayId)}/functions`, signal),
    enabled: !!issued,
  });
  if (!issued) return null;
  const published = (functions.data ?? []).filter((f) => issued.environment in f.published).map((f) => f.name);
  return (
    <Modal opened onClose={onClose} title="Your API key" size="lg" closeOnClickOutside={false}>
      <Stack>
        <Alert color="orange" title="Copy it now: it is shown only this once" data-testid="key-warning">
          imprun keeps only a hash of this key. If you lose it, regenerate it (the old one then stops working).
        </Alert>
        <div data-testid="issued-key">
          <Copyable value={issued.apiKey} label="Copy the API key" />
        </div>
        <Text size="sm">
          Valid for <b>{issued.gatewayId}</b> / <b>{issued.environment}</b>: send it as the <code>apikey</code> header.
        </Text>
        <Card withBorder>
          <Text fw={500} mb="xs">
            Try it
          </Text>
          {functions.isPending ? (
            <Loader size="sm" />
          ) : published.length ? (
            <CallPanel gatewayId={issued.gatewayId} environment={issued.environment} functions={published} apiKey={issued.apiKey} />
          ) : (
            <Text size="sm" c="dimmed">
              Nothing is published in {issued.environment} yet.
            </Text>
          )}
        </Card>
        <Group justify="flex-end">
          <Button onClick={onClose}>I have copied it</Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function Grants({ app, onIssued }: { app: Application; onIssued: (issued: IssuedGrant) => void }) {
  const queryClient = useQueryClient();
  const gateways = useGateways();
  const [gatewayId, setGatewayId] = useState<string | null>(null);
  const [environment, setEnvironment] = useState<string>("dev");
  const key = ["grants", app.applicationId];
  const base = `/v1/applications/${enc(app.applicationId)}/grants`;
  const grants = useQuery({ queryKey: key, queryFn: ({ signal }) => get<Grant[]>(base, signal), refetchInterval: 5000 });
  const issued = (g: IssuedGrant) => {
    shownKeys.remember(g.grantId, g.apiKey);
    queryClient.invalidateQueries({ queryKey: key });
    onIssued(g);
  };
  const create = useMutation({
    mutationFn: () => post<IssuedGrant>(base, { gatewayId, environment }),
    onSuccess: issued,
  });
  const regenerate = useMutation({
    mutationFn: (grantId: string) => post<IssuedGrant>(`${base}/${enc(grantId)}/regenerate`),
    onSuccess: issued,
  });
  const revoke = useMutation({
    mutationFn: (grantId: string) => del<Grant>(`${base}/${enc(grantId)}`),
    onSuccess: (_, grantId) => {
      shownKeys.forget(grantId);
      queryClient.invalidateQueries({ queryKey: key });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Stack gap="xs">
      <Table data-testid="grant-table">
        <TableHead columns={["Gateway / environment", "Key", "Status", "Created", "Actions"]} />
        <Table.Tbody>
          {grants.data?.map((g) => (
            <Table.Tr key={g.grantId}>
              <Table.Td>
                {g.gatewayId} / {g.environment}
              </Table.Td>
              <Table.Td>
                <code>{g.keyPrefix}…</code>
              </Table.Td>
              <Table.Td>
                <Badge color={g.status === "Active" || g.status === "active" ? "green" : "gray"} variant="light">
                  {g.status}
                  {g.applied ? "" : " (applying)"}
                </Badge>
              </Table.Td>
              <Table.Td>
                <Text size="xs">{when(g.createdAt)}</Text>
              </Table.Td>
              <Table.Td>
                <Group gap={4} wrap="nowrap">
                  <Button size="xs" variant="default" loading={regenerate.isPending && regenerate.variables === g.grantId} onClick={() => regenerate.mutate(g.grantId)}>
                    Regenerate key
                  </Button>
                  <Button size="xs" variant="subtle" color="red" onClick={() => revoke.mutate(g.grantId)}>
                    Revoke
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <form onSubmit={submit}>
        <Group align="flex-end">
          <Select
            label="Gateway"
            placeholder="Choose a gateway"
            data={(gateways.data ?? []).map((g) => g.gatewayId)}
            value={gatewayId}
            onChange={setGatewayId}
            required
          />
          <Select label="Environment" data={[...ENVIRONMENTS]} value={environment} onChange={(v) => v && setEnvironment(v)} allowDeselect={false} w={120} />
          <Button type="submit" loading={create.isPending} disabled={!gatewayId}>
            Grant access
          </Button>
        </Group>
      </form>
      <ErrorAlert error={create.error ?? regenerate.error ?? revoke.error ?? grants.error} />
    </Stack>
  );
}

export function ApplicationsPage() {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [issued, setIssued] = useState<IssuedGrant | null>(null);
  const applications = useQuery({ queryKey: ["applications"], queryFn: ({ signal }) => get<Application[]>("/v1/applications", signal) });
  const create = useMutation({
    mutationFn: () => post<Application>("/v1/applications", { name }),
    onSuccess: () => {
      setName("");
      queryClient.invalidateQueries({ queryKey: ["applications"] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => del(`/v1/applications/${enc(id)}`),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["applications"] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Stack>
      <Title order={2}>Applications and API keys</Title>
      <Text size="sm" c="dimmed">
        An application holds grants; each grant opens one gateway environment with its own key (shown once).
      </Text>
      <form onSubmit={submit}>
        <Group align="flex-end">
          <TextInput label="New application" placeholder="mobile-app" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button type="submit" loading={create.isPending}>
            Create application
          </Button>
        </Group>
      </form>
      <ErrorAlert error={create.error ?? applications.error ?? remove.error} />
      {applications.isPending && <Loader aria-label="Loading applications" />}
      {applications.data?.map((app) => (
        <Card key={app.applicationId} withBorder data-application={app.name}>
          <Group justify="space-between" mb="xs">
            <div>
              <Title order={3} size="h4">
                {app.name}
              </Title>
              <Text size="xs" c="dimmed">
                {app.applicationId}
              </Text>
            </div>
            <Button size="xs" color="red" variant="subtle" onClick={() => remove.mutate(app.applicationId)}>
              Delete application
            </Button>
          </Group>
          <Grants app={app} onIssued={setIssued} />
        </Card>
      ))}
      <KeyShownOnce issued={issued} onClose={() => setIssued(null)} />
    </Stack>
  );
}
