// The editor route: Monaco with Python, save (Ctrl/Cmd+S) with the API's problems as markers, a Run
// panel for debug runs of the unsaved code, publish, promote with a diff, and history with restore.
// Loaded lazily: Monaco is only fetched when this route opens.

import {
  Alert,
  Badge,
  Button,
  Code,
  Drawer,
  Grid,
  Group,
  Kbd,
  Loader,
  Modal,
  ScrollArea,
  Select,
  Stack,
  Tabs,
  Text,
  TextInput,
  Textarea,
  Title,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { ApiError, enc, fnPath, get, patch, post } from "../api/client";
import {
  ENVIRONMENTS,
  type CodeProblem,
  type DebugResult,
  type FunctionInfo,
  type FunctionVersion,
  type Gateway,
  type ModuleDefinitions,
} from "../api/types";
import { statusColor } from "../components/CallPanel";
import { ErrorAlert, errorText, when } from "../components/common";
import { installDefinitions, monaco } from "../editor/monaco";
import { DiffView } from "../editor/MonacoViews";
import { logLine } from "../lib/logs";
import { codeProblems, toMarkers } from "../lib/problems";
import { loadRequest, parsePairs, saveRequest, type RunRequest } from "../lib/savedRequests";

const TEMPLATE = `import imp


def main(name: str = "world"):
    """Say hello.

    Args:
        name: who to greet
    """
    imp.log("hello", name)
    return {"hello": name}
`;

const MARKER_OWNER = "imprun";

function useDefinitions() {
  return useQuery({
    queryKey: ["definitions"],
    queryFn: ({ signal }) => get<{ modules: ModuleDefinitions[] }>("/v1/runtime/definitions", signal),
    staleTime: Infinity,
  });
}

function RunPanel({ gw, fn, code }: { gw: string; fn: string; code: () => string }) {
  const [request, setRequest] = useState<RunRequest>(() => loadRequest(gw, fn || "new"));
  const update = (change: Partial<RunRequest>) => {
    const next = { ...request, ...change };
    setRequest(next);
    saveRequest(gw, fn || "new", next);
  };
  const run = useMutation({
    mutationFn: () => {
      let body: unknown = null;
      if (request.body.trim()) body = JSON.parse(request.body);
      return post<DebugResult>(`/v1/api-gateways/${enc(gw)}/functions/${fnPath(fn)}/debug`, {
        code: code(),
        method: request.method,
        query: parsePairs(request.query, "="),
        headers: parsePairs(request.headers, ":"),
        body,
      });
    },
  });
  const result = run.data;
  return (
    <Stack gap="xs" data-testid="run-panel">
      <Group align="flex-end" gap="xs">
        <Select
          label="Method"
          w={100}
          data={["GET", "POST", "PUT", "PATCH", "DELETE"]}
          value={request.method}
          onChange={(v) => v && update({ method: v })}
          allowDeselect={false}
        />
        <Button onClick={() => run.mutate()} loading={run.isPending} disabled={!fn} title={fn ? "" : "Save the function first"}>
          Run
        </Button>
        <Text size="xs" c="dimmed">
          Runs the editor's code (unsaved included) in the dev sandbox.
        </Text>
      </Group>
      <Textarea label="Query (name=value per line)" autosize minRows={1} value={request.query} onChange={(e) => update({ query: e.currentTarget.value })} />
      <Textarea label="Headers (Name: value per line)" autosize minRows={1} value={request.headers} onChange={(e) => update({ headers: e.currentTarget.value })} />
      <Textarea
        label="JSON body"
        autosize
        minRows={3}
        value={request.body}
        onChange={(e) => update({ body: e.currentTarget.value })}
        styles={{ input: { fontFamily: "monospace" } }}
        data-testid="run-body"
      />
      <ErrorAlert error={run.error instanceof SyntaxError ? new Error(`The body is not JSON: ${run.error.message}`) : run.error} />
      {result && (
        <Stack gap={4} data-testid="run-result">
          <Group gap="xs">
            <Badge color={statusColor(result.status)} data-testid="run-status">
              {result.status}
            </Badge>
            <Text size="xs" c="dimmed" data-testid="run-duration">
              {result.durationMs.toFixed(1)} ms
            </Text>
          </Group>
          <Tabs defaultValue="body">
            <Tabs.List>
              <Tabs.Tab value="body">Body</Tabs.Tab>
              <Tabs.Tab value="headers">Headers</Tabs.Tab>
              <Tabs.Tab value="logs">Logs ({result.logs.length})</Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="body" pt="xs">
              <Code block data-testid="run-response-body">
                {typeof result.body === "string" ? result.body : JSON.stringify(result.body, null, 2)}
              </Code>
            </Tabs.Panel>
            <Tabs.Panel value="headers" pt="xs">
              <Code block>{Object.entries(result.headers).map(([k, v]) => `${k}: ${v}`).join("\n")}</Code>
            </Tabs.Panel>
            <Tabs.Panel value="logs" pt="xs">
              <Code block data-testid="run-logs" style={{ whiteSpace: "pre-wrap" }}>
                {result.logs.map(logLine).join("\n")}
              </Code>
            </Tabs.Panel>
          </Tabs>
        </Stack>
      )}
    </Stack>
  );
}

function codeOfVersion(history: FunctionVersion[] | undefined, version: number | undefined): string {
  if (version === undefined) return "";
  return history?.find((v) => v.version === version)?.code ?? "";
}

function PromoteModal(props: {
  gw: string;
  fn: FunctionInfo;
  history: FunctionVersion[] | undefined;
  stages: string[];
  onClose: () => void;
  onDone: () => void;
}) {
  const { fn, stages } = props;
  const targets = stages.slice(1);
  const [target, setTarget] = useState<string>(targets.find((t) => !(t in fn.published)) ?? targets[0]);
  const from = stages[stages.indexOf(target) - 1];
  const source = fn.published[from];
  const current = fn.published[target];
  const promote = useMutation({
    mutationFn: () => post(`/v1/api-gateways/${enc(props.gw)}/functions/${fnPath(fn.name)}/deploy-to-stage`, { targetStage: target, from }),
    onSuccess: () => {
      notifications.show({ title: "Promoted", message: `${fn.name} v${source?.version} is live in ${target}` });
      props.onDone();
    },
  });
  return (
    <Modal opened onClose={props.onClose} title={`Promote ${fn.name}`} size="90%">
      <Stack>
        <Group align="flex-end">
          <Select label="Promote to" data={targets} value={target} onChange={(v) => v && setTarget(v)} allowDeselect={false} w={140} />
          <Text size="sm">
            copies what <b>{from}</b> runs ({source ? `v${source.version}` : "nothing published"}) over what <b>{target}</b> runs (
            {current ? `v${current.version}` : "nothing yet"}).
          </Text>
        </Group>
        {source ? (
          <>
            <Group grow>
              <Text size="xs" c="dimmed">
                {target} now {current ? `(v${current.version})` : "(empty)"}
              </Text>
              <Text size="xs" c="dimmed">
                after promotion (v{source.version} from {from})
              </Text>
            </Group>
            <DiffView original={codeOfVersion(props.history, current?.version)} modified={codeOfVersion(props.history, source.version)} />
          </>
        ) : (
          <Alert color="yellow">Publish to {from} first.</Alert>
        )}
        <ErrorAlert error={promote.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={props.onClose}>
            Cancel
          </Button>
          <Button onClick={() => promote.mutate()} loading={promote.isPending} disabled={!source}>
            Promote to {target}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function HistoryDrawer(props: {
  history: FunctionVersion[] | undefined;
  current: () => string;
  onRestore: (version: FunctionVersion) => void;
  onClose: () => void;
}) {
  const [selected, setSelected] = useState<FunctionVersion | null>(props.history?.[0] ?? null);
  return (
    <Drawer opened onClose={props.onClose} title="History" position="right" size="80%">
      <Grid>
        <Grid.Col span={3}>
          <ScrollArea h={560}>
            <Stack gap={4}>
              {props.history?.map((v) => (
                <Button
                  key={v.version}
                  variant={selected?.version === v.version ? "light" : "subtle"}
                  justify="flex-start"
                  h="auto"
                  py={4}
                  onClick={() => setSelected(v)}
                >
                  <Stack gap={0} align="flex-start">
                    <Text size="sm">v{v.version}</Text>
                    <Text size="xs" c="dimmed">
                      {when(v.at)} · {v.author}
                    </Text>
                    {v.changelog && <Text size="xs">{v.changelog}</Text>}
                  </Stack>
                </Button>
              ))}
            </Stack>
          </ScrollArea>
        </Grid.Col>
        <Grid.Col span={9}>
          {selected && (
            <Stack>
              <Group justify="space-between">
                <Text size="sm">
                  v{selected.version} (left) against the editor (right)
                </Text>
                <Button size="xs" onClick={() => props.onRestore(selected)}>
                  Restore v{selected.version}
                </Button>
              </Group>
              <DiffView original={selected.code ?? ""} modified={props.current()} height={520} />
            </Stack>
          )}
        </Grid.Col>
      </Grid>
    </Drawer>
  );
}

export default function FunctionEditorPage() {
  const params = useParams();
  const gw = params.gw ?? "";
  const existing = params["*"] ?? "";
  const isNew = !existing;
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [problems, setProblems] = useState<CodeProblem[]>([]);
  const [dirty, setDirty] = useState(false);
  const [publishTo, setPublishTo] = useState<string>("dev");
  const [promoting, setPromoting] = useState(false);
  const [showHistory, setShowHistory] = useState(false);
  const [ready, setReady] = useState(false);
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const fnName = isNew ? name.trim() : existing;
  const base = `/v1/api-gateways/${enc(gw)}/functions`;

  const definitions = useDefinitions();
  const fn = useQuery({
    queryKey: ["function", gw, existing],
    queryFn: ({ signal }) => get<FunctionInfo>(`${base}/${fnPath(existing)}`, signal),
    enabled: !isNew,
  });
  const history = useQuery({
    queryKey: ["history", gw, existing],
    queryFn: ({ signal }) => get<FunctionVersion[]>(`${base}/${fnPath(existing)}/history?includeCode=true`, signal),
    enabled: !isNew,
  });
  const gateway = useQuery({
    queryKey: ["gateways", gw],
    queryFn: ({ signal }) => get<Gateway>(`/v1/api-gateways/${enc(gw)}`, signal),
  });

  const code = useCallback(() => editorRef.current?.getValue() ?? "", []);

  const showProblems = useCallback((found: CodeProblem[]) => {
    setProblems(found);
    const model = editorRef.current?.getModel();
    if (!model) return;
    const markers = toMarkers(found, model.getLinesContent()).map((m) => ({ ...m, severity: monaco.MarkerSeverity.Error }));
    monaco.editor.setModelMarkers(model, MARKER_OWNER, markers);
  }, []);

  const refresh = useCallback(() => {
    queryClient.invalidateQueries({ queryKey: ["function", gw, existing] });
    queryClient.invalidateQueries({ queryKey: ["history", gw, existing] });
    queryClient.invalidateQueries({ queryKey: ["functions", gw] });
  }, [queryClient, gw, existing]);

  const save = useMutation({
    mutationFn: (changelog?: string) =>
      isNew
        ? post<FunctionInfo>(base, { name: fnName, code: code() })
        : patch<FunctionInfo>(`${base}/${fnPath(existing)}`, { code: code(), changelog }),
    onSuccess: (saved) => {
      showProblems([]);
      setDirty(false);
      notifications.show({ title: "Saved", message: `${saved.name}: draft v${saved.version}`, autoClose: 2000 });
      if (isNew) navigate(`/gateways/${enc(gw)}/functions/${fnPath(saved.name)}`, { replace: true });
      else refresh();
    },
    onError: (error) => showProblems(codeProblems(error)),
  });
  const saveRef = useRef(save);
  saveRef.current = save;

  const publish = useMutation({
    mutationFn: () => post(`${base}/${fnPath(existing)}/publish`, { environment: publishTo }),
    onSuccess: () => {
      notifications.show({ title: "Published", message: `${existing} is live in ${publishTo}` });
      refresh();
    },
    onError: (error) => showProblems(codeProblems(error)),
  });

  // The editor: created once the catalogue and (for an existing function) the code are known.
  const initialCode = isNew ? TEMPLATE : fn.data?.code;
  useEffect(() => {
    if (!host.current || initialCode === undefined || editorRef.current) return;
    const editor = monaco.editor.create(host.current, {
      value: initialCode,
      language: "python",
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      tabSize: 4,
      insertSpaces: true,
      scrollBeyondLastLine: false,
      ariaLabel: "Function code",
      fixedOverflowWidgets: true,
    });
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => saveRef.current.mutate(undefined));
    editor.onDidChangeModelContent(() => setDirty(true));
    editorRef.current = editor;
    setReady(true);
    editor.focus();
    performance.mark("imprun:editor-ready");
  }, [initialCode]);
  useEffect(
    () => () => {
      editorRef.current?.getModel()?.dispose();
      editorRef.current?.dispose();
      editorRef.current = null;
    },
    [],
  );
  useEffect(() => {
    if (definitions.data) installDefinitions(definitions.data.modules);
  }, [definitions.data]);

  const restore = (version: FunctionVersion) => {
    editorRef.current?.setValue(version.code ?? "");
    setShowHistory(false);
    save.mutate(`restore v${version.version}`);
  };

  const stages = gateway.data?.promotionPipeline?.stages?.length ? gateway.data.promotionPipeline.stages : [...ENVIRONMENTS];
  const saveError = save.error && codeProblems(save.error).length === 0 ? save.error : null;
  const publishError = publish.error && codeProblems(publish.error).length === 0 ? publish.error : null;

  return (
    <Stack gap="sm">
      <Group justify="space-between" wrap="nowrap">
        <Group gap="xs" wrap="nowrap">
          <Text component={Link} to={`/gateways/${enc(gw)}`} size="sm" c="dimmed">
            {gw} /
          </Text>
          {isNew ? (
            <TextInput aria-label="Function name" placeholder="functionName" value={name} onChange={(e) => setName(e.currentTarget.value)} w={220} />
          ) : (
            <Title order={2} size="h3">
              {existing}
            </Title>
          )}
          {fn.data && <Badge variant="light">draft v{fn.data.version}</Badge>}
          {dirty && <Badge color="yellow" variant="light">unsaved</Badge>}
          {fn.data &&
            Object.entries(fn.data.published).map(([env, p]) => (
              <Badge key={env} variant="outline" color={p.version === fn.data!.version ? "green" : "yellow"} data-testid={`published-${env}`}>
                {env} v{p.version}
              </Badge>
            ))}
        </Group>
        <Group gap="xs" wrap="nowrap">
          <Button onClick={() => save.mutate(undefined)} loading={save.isPending} disabled={!fnName} title="Save the draft (Ctrl/Cmd+S)">
            Save <Kbd ml={6} size="xs">Ctrl S</Kbd>
          </Button>
          <Select aria-label="Publish to" w={100} data={[...ENVIRONMENTS]} value={publishTo} onChange={(v) => v && setPublishTo(v)} allowDeselect={false} disabled={isNew} />
          <Button variant="light" onClick={() => publish.mutate()} loading={publish.isPending} disabled={isNew || dirty} title={dirty ? "Save first" : ""}>
            Publish
          </Button>
          <Button variant="default" onClick={() => setPromoting(true)} disabled={isNew || !fn.data}>
            Promote…
          </Button>
          <Button variant="default" onClick={() => setShowHistory(true)} disabled={isNew}>
            History
          </Button>
        </Group>
      </Group>
      <ErrorAlert error={saveError ?? publishError ?? fn.error} />
      <Grid gutter="sm">
        <Grid.Col span={7}>
          <div ref={host} style={{ height: 520, border: "1px solid var(--mantine-color-gray-3)" }} data-testid="code-editor" data-ready={ready} />
          {!ready && <Loader size="sm" aria-label="Loading the editor" />}
          <Text size="xs" c="dimmed" mt={4}>
            <Kbd size="xs">Ctrl</Kbd>+<Kbd size="xs">S</Kbd> saves · <Kbd size="xs">Ctrl</Kbd>+<Kbd size="xs">Space</Kbd> completes ·{" "}
            <Kbd size="xs">F8</Kbd> next problem · <Kbd size="xs">Ctrl</Kbd>+<Kbd size="xs">M</Kbd> makes Tab leave the editor
          </Text>
          <Stack gap={2} mt="xs" data-testid="problems" aria-live="polite">
            {problems.map((p) => (
              <Text key={`${p.line}:${p.column}:${p.message}`} size="sm" c="red">
                Line {p.line}, column {p.column}: {p.message}
              </Text>
            ))}
          </Stack>
        </Grid.Col>
        <Grid.Col span={5}>
          <RunPanel gw={gw} fn={isNew ? "" : existing} code={code} />
        </Grid.Col>
      </Grid>
      {promoting && fn.data && (
        <PromoteModal
          gw={gw}
          fn={fn.data}
          history={history.data}
          stages={stages}
          onClose={() => setPromoting(false)}
          onDone={() => {
            setPromoting(false);
            refresh();
          }}
        />
      )}
      {showHistory && <HistoryDrawer history={history.data} current={code} onRestore={restore} onClose={() => setShowHistory(false)} />}
      {save.error instanceof ApiError && save.error.status === 400 && problems.length === 0 && (
        <Text size="sm" c="red">
          {errorText(save.error)}
        </Text>
      )}
    </Stack>
  );
}
