// Calls a published function through the control plane's /call route (the data plane sends no CORS
// headers), with an API key, and shows the answer.

import { Badge, Button, Code, Group, Select, Stack, Text, TextInput, Textarea } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";

import { enc, post } from "../api/client";
import type { CallAnswer } from "../api/types";
import { ErrorAlert } from "./common";

export function statusColor(status: number): string {
  return status < 300 ? "green" : status < 500 ? "yellow" : "red";
}

export function AnswerView({ answer }: { answer: CallAnswer }) {
  return (
    <Stack gap={4} data-testid="call-answer">
      <Group gap="xs">
        <Badge color={statusColor(answer.status)} data-testid="call-status">
          {answer.status}
        </Badge>
        <Text size="xs" c="dimmed">
          {answer.durationMs.toFixed(1)} ms · {answer.url}
        </Text>
      </Group>
      <Code block data-testid="call-body">
        {answer.json !== null && answer.json !== undefined ? JSON.stringify(answer.json, null, 2) : answer.body}
      </Code>
      {answer.truncated && <Text size="xs">The answer was cut at 1 MiB.</Text>}
    </Stack>
  );
}

export function CallPanel(props: {
  gatewayId: string;
  environment: string;
  functions: string[];
  apiKey?: string;
  initialFunction?: string;
}) {
  const [fn, setFn] = useState<string | null>(props.initialFunction ?? props.functions[0] ?? null);
  const [method, setMethod] = useState("POST");
  const [body, setBody] = useState("{}");
  const [apiKey, setApiKey] = useState(props.apiKey ?? "");
  const call = useMutation({
    mutationFn: () => {
      let parsed: unknown = null;
      if (body.trim()) parsed = JSON.parse(body);
      return post<CallAnswer>(`/v1/api-gateways/${enc(props.gatewayId)}/environments/${props.environment}/call`, {
        function: fn,
        method,
        headers: apiKey ? { apikey: apiKey } : {},
        body: method === "GET" ? null : parsed,
      });
    },
  });
  return (
    <Stack gap="xs">
      <Group align="flex-end" grow>
        <Select label="Function" data={props.functions} value={fn} onChange={setFn} searchable />
        <Select label="Method" data={["GET", "POST", "PUT", "PATCH", "DELETE"]} value={method} onChange={(v) => v && setMethod(v)} allowDeselect={false} />
      </Group>
      <TextInput label="API key (apikey header)" value={apiKey} onChange={(e) => setApiKey(e.currentTarget.value)} autoComplete="off" />
      <Textarea label="JSON body" autosize minRows={2} value={body} onChange={(e) => setBody(e.currentTarget.value)} styles={{ input: { fontFamily: "monospace" } }} />
      <Group>
        <Button onClick={() => call.mutate()} loading={call.isPending} disabled={!fn}>
          Call {fn ?? ""} in {props.environment}
        </Button>
      </Group>
      <ErrorAlert error={call.error} />
      {call.data && <AnswerView answer={call.data} />}
    </Stack>
  );
}
