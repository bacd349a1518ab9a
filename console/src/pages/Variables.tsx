import { Badge, Button, Checkbox, Group, Select, Stack, Table, Text, TextInput } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { del, enc, get, put } from "../api/client";
import { ENVIRONMENTS, type Variable } from "../api/types";
import { ErrorAlert, TableHead } from "../components/common";

export function VariablesPanel({ gw }: { gw: string }) {
  const [environment, setEnvironment] = useState("dev");
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [secret, setSecret] = useState(false);
  const base = `/v1/api-gateways/${enc(gw)}/environments/${environment}/variables`;
  const key = ["variables", gw, environment];
  const queryClient = useQueryClient();
  const variables = useQuery({ queryKey: key, queryFn: ({ signal }) => get<Variable[]>(base, signal) });
  const save = useMutation({
    mutationFn: () => put<Variable>(`${base}/${enc(name)}`, { value, secret }),
    onSuccess: () => {
      setName("");
      setValue("");
      setSecret(false);
      queryClient.invalidateQueries({ queryKey: key });
    },
  });
  const remove = useMutation({
    mutationFn: (variable: string) => del(`${base}/${enc(variable)}`),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: key }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  return (
    <Stack>
      <Group align="flex-end">
        <Select label="Environment" w={120} data={[...ENVIRONMENTS]} value={environment} onChange={(v) => v && setEnvironment(v)} allowDeselect={false} />
        <Text size="sm" c="dimmed">
          Functions read these as <code>imp.env</code>; a change is live within milliseconds. Promotion never copies variables.
        </Text>
      </Group>
      <ErrorAlert error={variables.error ?? remove.error} />
      <Table striped data-testid="variable-table">
        <TableHead columns={["Name", "Value", "Actions"]} />
        <Table.Tbody>
          {variables.data?.map((v) => (
            <Table.Tr key={v.name}>
              <Table.Td>
                <code>{v.name}</code> {v.secret && <Badge size="xs">secret</Badge>}
              </Table.Td>
              <Table.Td>{v.masked ? <Text c="dimmed">•••••• (never shown again)</Text> : <code>{v.value}</code>}</Table.Td>
              <Table.Td>
                <Button size="xs" variant="subtle" color="red" onClick={() => remove.mutate(v.name)} aria-label={`Delete ${v.name}`}>
                  Delete
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <form onSubmit={submit}>
        <Group align="flex-end">
          <TextInput label="Name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <TextInput
            label="Value"
            required
            type={secret ? "password" : "text"}
            autoComplete="off"
            value={value}
            onChange={(e) => setValue(e.currentTarget.value)}
          />
          <Checkbox label="Secret (masked, never shown again)" checked={secret} onChange={(e) => setSecret(e.currentTarget.checked)} mb={8} />
          <Button type="submit" loading={save.isPending}>
            Set variable
          </Button>
        </Group>
      </form>
      <ErrorAlert error={save.error} />
    </Stack>
  );
}
