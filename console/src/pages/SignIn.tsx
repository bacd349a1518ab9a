import { Alert, Anchor, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router";

import { post, session } from "../api/client";
import { ErrorAlert } from "../components/common";

export function SignInPage({ onSignedIn }: { onSignedIn: (username: string) => void }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const navigate = useNavigate();
  const location = useLocation();
  const state = location.state as { from?: string; expired?: boolean } | null;

  const submit = useMutation({
    mutationFn: async () => {
      if (mode === "register") await post("/v1/auth/register", { username, password });
      return post<{ token: string; expiresAt: string }>("/v1/auth/login", { username, password });
    },
    onSuccess: ({ token }) => {
      session.save(token, username);
      onSignedIn(username);
      navigate(state?.from && state.from !== "/login" ? state.from : "/", { replace: true });
    },
  });

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit.mutate();
  };

  return (
    <Center mih="100vh" component="main">
      <Paper withBorder p="xl" w={400} shadow="sm">
        <form onSubmit={onSubmit}>
          <Stack>
            <Title order={1} size="h3">
              {mode === "login" ? "Sign in to imprun" : "Create an imprun account"}
            </Title>
            {state?.expired && <Alert color="yellow">Your session expired; sign in again.</Alert>}
            <TextInput label="Username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.currentTarget.value)} />
            <PasswordInput
              label="Password"
              autoComplete={mode === "login" ? "current-password" : "new-password"}
              required
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            <ErrorAlert error={submit.error} />
            <Button type="submit" loading={submit.isPending}>
              {mode === "login" ? "Sign in" : "Register and sign in"}
            </Button>
            <Text size="sm">
              {mode === "login" ? "No account yet? " : "Already registered? "}
              <Anchor component="button" type="button" onClick={() => { setMode(mode === "login" ? "register" : "login"); submit.reset(); }}>
                {mode === "login" ? "Register" : "Sign in"}
              </Anchor>
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
