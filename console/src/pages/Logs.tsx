import { Badge, Button, Code, Group, ScrollArea, Select, Stack, Table, Text, TextInput } from "@mantine/core";
import { useEffect, useMemo, useRef, useState } from "react";

import { authHeaders, enc, errorFrom } from "../api/client";
import { ENVIRONMENTS, type LogEntry } from "../api/types";
import { ErrorAlert } from "../components/common";
import { appendCapped, LEVELS, matchesFilter } from "../lib/logs";
import { followEvents } from "../lib/sse";
import { useFunctions } from "./Gateway";

const KEEP = 2000;
const RANGES = [
  { value: "5m", label: "Last 5 minutes" },
  { value: "1h", label: "Last hour" },
  { value: "1d", label: "Last day" },
  { value: "", label: "Newest 200" },
];

const LEVEL_COLORS: Record<string, string> = { debug: "gray", info: "blue", warning: "yellow", error: "red" };

export function LogsPanel({ gw }: { gw: string }) {
  const [environment, setEnvironment] = useState<string>("dev");
  const [fn, setFn] = useState<string | null>(null);
  const [since, setSince] = useState("1h");
  const [level, setLevel] = useState<string | null>(null);
  const [text, setText] = useState("");
  const [paused, setPaused] = useState(false);
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [held, setHeld] = useState<LogEntry[]>([]);
  const [status, setStatus] = useState<"connecting" | "live" | "ended">("connecting");
  const [error, setError] = useState<unknown>(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const functions = useFunctions(gw);

  useEffect(() => {
    const controller = new AbortController();
    setEntries([]);
    setHeld([]);
    setError(null);
    setStatus("connecting");
    const params = new URLSearchParams({ follow: "true", limit: "200" });
    if (fn) params.set("function", fn);
    if (since) params.set("since", since);
    const url = `/v1/api-gateways/${enc(gw)}/environments/${environment}/logs?${params}`;
    followEvents(
      url,
      authHeaders(),
      (message) => {
        if (message.event === "end") {
          setStatus("ended");
          return;
        }
        setStatus("live");
        const entry = JSON.parse(message.data) as LogEntry;
        if (pausedRef.current) setHeld((h) => appendCapped(h, [entry], KEEP));
        else setEntries((e) => appendCapped(e, [entry], KEEP));
      },
      controller.signal,
    )
      .then(async (response) => {
        if (!response.ok) setError(await errorFrom(response));
        else if (!controller.signal.aborted) setStatus("ended");
      })
      .catch((exc) => {
        if (!controller.signal.aborted) setError(exc);
      });
    // the stream is open once the response arrives, even before the first entry
    const opened = setTimeout(() => setStatus((s) => (s === "connecting" ? "live" : s)), 1000);
    return () => {
      clearTimeout(opened);
      controller.abort();
    };
  }, [gw, environment, fn, since]);

  const resume = () => {
    setEntries((e) => appendCapped(e, held, KEEP));
    setHeld([]);
    setPaused(false);
  };
  const shown = useMemo(() => entries.filter((e) => matchesFilter(e, { level, text })), [entries, level, text]);

  return (
    <Stack>
      <Group align="flex-end">
        <Select label="Environment" w={120} data={[...ENVIRONMENTS]} value={environment} onChange={(v) => v && setEnvironment(v)} allowDeselect={false} />
        <Select
          label="Function"
          w={200}
          clearable
          placeholder="All functions"
          data={(functions.data ?? []).map((f) => f.name)}
          value={fn}
          onChange={setFn}
        />
        <Select label="Time range" w={160} data={RANGES} value={since} onChange={(v) => setSince(v ?? "")} allowDeselect={false} />
        <Select label="Minimum level" w={140} clearable placeholder="Any level" data={[...LEVELS]} value={level} onChange={setLevel} />
        <TextInput label="Text" placeholder="Filter messages" value={text} onChange={(e) => setText(e.currentTarget.value)} />
        {paused ? (
          <Button variant="light" onClick={resume}>
            Resume ({held.length} new)
          </Button>
        ) : (
          <Button variant="default" onClick={() => setPaused(true)}>
            Pause
          </Button>
        )}
        <Badge color={status === "live" ? "green" : status === "ended" ? "gray" : "blue"} data-testid="log-status">
          {status === "live" ? (paused ? "paused" : "live") : status}
        </Badge>
      </Group>
      <ErrorAlert error={error} />
      <ScrollArea h={460} type="auto">
        <Table striped fz="xs" data-testid="log-table" aria-live="polite">
          <Table.Thead>
            <Table.Tr>
              <Table.Th w={170}>Time</Table.Th>
              <Table.Th w={70}>Level</Table.Th>
              <Table.Th w={140}>Function</Table.Th>
              <Table.Th>Message</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shown.map((e, i) => (
              <Table.Tr key={`${e.time}-${e.requestId}-${i}`}>
                <Table.Td>{new Date(e.time).toLocaleTimeString()}</Table.Td>
                <Table.Td>
                  <Badge size="xs" color={LEVEL_COLORS[e.level] ?? "gray"}>
                    {e.level}
                  </Badge>
                </Table.Td>
                <Table.Td>{e.function}</Table.Td>
                <Table.Td>
                  <Code block={e.message.includes("\n")} style={{ whiteSpace: "pre-wrap" }}>
                    {e.message}
                  </Code>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        {shown.length === 0 && (
          <Text c="dimmed" size="sm" p="sm">
            No log entry yet — calls' imp.log lines, prints and errors appear here as they happen.
          </Text>
        )}
      </ScrollArea>
    </Stack>
  );
}
