import { Accordion, Button, Card, Checkbox, Code, Group, NumberInput, Select, Stack, Text, TextInput, Textarea, Title } from "@mantine/core";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";

import { enc, get, post } from "../api/client";
import type { Application, CallAnswer, Grant, GrantTools, Tool } from "../api/types";
import { AnswerView } from "../components/CallPanel";
import { Copyable, ErrorAlert } from "../components/common";
import { shownKeys } from "../lib/keys";
import { FormValueError, formArguments, formFields } from "../lib/schemaForm";

/** An MCP client configuration (the `mcpServers` shape most clients read) for a key. */
export function mcpClientConfig(mcpUrl: string, apiKey: string, name = "imprun"): string {
  return JSON.stringify(
    { mcpServers: { [name]: { type: "http", url: mcpUrl, headers: { apikey: apiKey || "<your API key>" } } } },
    null,
    2,
  );
}

function ToolForm({ tool, grant, apiKey }: { tool: Tool; grant: GrantTools; apiKey: string }) {
  const fields = useMemo(() => formFields(tool.inputSchema), [tool.inputSchema]);
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(fields.map((f) => [f.name, f.defaultValue])));
  const [formError, setFormError] = useState<string | null>(null);
  const call = useMutation({
    mutationFn: (args: Record<string, unknown>) =>
      post<CallAnswer>(`/v1/api-gateways/${enc(grant.gatewayId)}/environments/${grant.environment}/call`, {
        function: tool.function,
        method: "POST",
        headers: apiKey ? { apikey: apiKey } : {},
        body: args,
      }),
  });
  const run = () => {
    try {
      setFormError(null);
      call.mutate(formArguments(fields, values));
    } catch (exc) {
      if (exc instanceof FormValueError) setFormError(exc.message);
      else throw exc;
    }
  };
  const set = (name: string, value: string) => setValues((v) => ({ ...v, [name]: value }));
  return (
    <Stack gap="xs">
      {fields.length === 0 && <Text size="sm">This tool takes any JSON object (or none).</Text>}
      {fields.map((f) => {
        const common = { key: f.name, label: f.label, description: f.description, required: f.required };
        if (f.kind === "boolean")
          return <Checkbox {...common} checked={values[f.name] === "true"} onChange={(e) => set(f.name, String(e.currentTarget.checked))} />;
        if (f.kind === "enum") return <Select {...common} data={f.options} value={values[f.name] || null} onChange={(v) => set(f.name, v ?? "")} />;
        if (f.kind === "number" || f.kind === "integer")
          return <NumberInput {...common} value={values[f.name]} onChange={(v) => set(f.name, String(v))} allowDecimal={f.kind === "number"} />;
        if (f.kind === "json")
          return <Textarea {...common} description={`${f.description} (JSON)`.trim()} value={values[f.name]} onChange={(e) => set(f.name, e.currentTarget.value)} />;
        return <TextInput {...common} value={values[f.name]} onChange={(e) => set(f.name, e.currentTarget.value)} />;
      })}
      <Group>
        <Button onClick={run} loading={call.isPending}>
          Try {tool.name}
        </Button>
      </Group>
      {formError && (
        <Text c="red" size="sm" role="alert">
          {formError}
        </Text>
      )}
      <ErrorAlert error={call.error} />
      {call.data && <AnswerView answer={call.data} />}
    </Stack>
  );
}

export function AgentsPage() {
  const [appId, setAppId] = useState<string | null>(null);
  const [grantId, setGrantId] = useState<string | null>(null);
  const [typedKey, setTypedKey] = useState("");
  const applications = useQuery({ queryKey: ["applications"], queryFn: ({ signal }) => get<Application[]>("/v1/applications", signal) });
  const grants = useQuery({
    queryKey: ["grants", appId],
    queryFn: ({ signal }) => get<Grant[]>(`/v1/applications/${enc(appId!)}/grants`, signal),
    enabled: !!appId,
  });
  const tools = useQuery({
    queryKey: ["tools", appId, grantId],
    queryFn: ({ signal }) => get<GrantTools>(`/v1/applications/${enc(appId!)}/grants/${enc(grantId!)}/tools`, signal),
    enabled: !!appId && !!grantId,
  });
  const apiKey = typedKey || (grantId ? (shownKeys.get(grantId) ?? "") : "");
  return (
    <Stack>
      <Title order={2}>Agents: MCP tools</Title>
      <Text size="sm" c="dimmed">
        Every function published in an environment is an MCP tool for the keys granted to it. Pick a grant to see what its key opens.
      </Text>
      <Group align="flex-end">
        <Select
          label="Application"
          placeholder="Choose"
          data={(applications.data ?? []).map((a) => ({ value: a.applicationId, label: a.name }))}
          value={appId}
          onChange={(v) => {
            setAppId(v);
            setGrantId(null);
          }}
        />
        <Select
          label="Grant"
          placeholder="Choose"
          data={(grants.data ?? []).map((g) => ({ value: g.grantId, label: `${g.gatewayId} / ${g.environment} (${g.keyPrefix}…)` }))}
          value={grantId}
          onChange={setGrantId}
          disabled={!appId}
        />
        <TextInput
          label="The grant's API key"
          description={grantId && shownKeys.get(grantId) ? "Using the key shown on this page" : "Paste it to try tools"}
          value={typedKey}
          onChange={(e) => setTypedKey(e.currentTarget.value)}
          autoComplete="off"
          w={360}
        />
      </Group>
      <ErrorAlert error={applications.error ?? grants.error ?? tools.error} />
      {tools.data && (
        <>
          <Card withBorder>
            <Stack gap="xs">
              <Group gap="xs">
                <Text fw={500}>MCP endpoint</Text>
                <Copyable value={tools.data.mcpUrl} label="Copy the MCP URL" />
              </Group>
              <Text size="sm">Client configuration (Streamable HTTP, the key as the apikey header):</Text>
              <Copyable value={mcpClientConfig(tools.data.mcpUrl, apiKey)} label="Copy the client configuration" block />
            </Stack>
          </Card>
          <Title order={3} size="h4">
            {tools.data.tools.length} tool{tools.data.tools.length === 1 ? "" : "s"}
          </Title>
          <Accordion variant="separated" data-testid="tool-list">
            {tools.data.tools.map((tool) => (
              <Accordion.Item key={tool.name} value={tool.name}>
                <Accordion.Control>
                  <Text fw={500}>{tool.name}</Text>
                  <Text size="xs" c="dimmed" lineClamp={1}>
                    {tool.description || `${tool.function} in ${tool.environment}`}
                  </Text>
                </Accordion.Control>
                <Accordion.Panel>
                  <Stack>
                    <div>
                      <Text size="sm" fw={500}>
                        inputSchema
                      </Text>
                      <Code block>{JSON.stringify(tool.inputSchema, null, 2)}</Code>
                    </div>
                    <ToolForm tool={tool} grant={tools.data} apiKey={apiKey} />
                  </Stack>
                </Accordion.Panel>
              </Accordion.Item>
            ))}
          </Accordion>
        </>
      )}
    </Stack>
  );
}
