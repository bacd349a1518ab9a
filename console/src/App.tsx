import { AppShell, Button, Group, Loader, NavLink, Text, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useState } from "react";
import { Link, Navigate, Route, Routes, useLocation, useNavigate } from "react-router";

import { session, setUnauthorizedHandler } from "./api/client";
import { loadEditor } from "./editor/prefetch";
import { AgentsPage } from "./pages/Agents";
import { ApplicationsPage } from "./pages/Applications";
import { GatewayPage } from "./pages/Gateway";
import { GatewaysPage } from "./pages/Gateways";
import { SignInPage } from "./pages/SignIn";

// Monaco is large: the editor route and everything it imports load only when it is opened, or
// when a gateway's function list has been shown and the browser is idle (editor/prefetch.ts).
const FunctionEditorPage = lazy(loadEditor);

export function App() {
  const [username, setUsername] = useState(session.username());
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();

  useEffect(() => {
    setUnauthorizedHandler(() => {
      session.clear();
      setUsername(null);
      queryClient.clear();
      navigate("/login", { state: { expired: true } });
    });
  }, [navigate, queryClient]);

  if (!username || !session.token()) {
    return (
      <Routes>
        <Route path="/login" element={<SignInPage onSignedIn={setUsername} />} />
        <Route path="*" element={<Navigate to="/login" state={{ from: location.pathname }} replace />} />
      </Routes>
    );
  }

  const signOut = () => {
    session.clear();
    queryClient.clear();
    setUsername(null);
    navigate("/login");
  };
  const at = (prefix: string) => location.pathname === prefix || location.pathname.startsWith(`${prefix}/`);

  return (
    <AppShell header={{ height: 52 }} navbar={{ width: 200, breakpoint: 0 }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={1} size="h4">
            <Link to="/" style={{ color: "inherit", textDecoration: "none" }}>
              imprun console
            </Link>
          </Title>
          <Group gap="sm">
            <Text size="sm" data-testid="signed-in-user">
              {username}
            </Text>
            <Button variant="default" size="xs" onClick={signOut}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <NavLink component={Link} to="/" label="Gateways" active={location.pathname === "/" || at("/gateways")} />
        <NavLink component={Link} to="/applications" label="Applications & keys" active={at("/applications")} />
        <NavLink component={Link} to="/agents" label="Agents (MCP tools)" active={at("/agents")} />
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loader aria-label="Loading" />}>
          <Routes>
            <Route path="/" element={<GatewaysPage />} />
            <Route path="/login" element={<Navigate to="/" replace />} />
            <Route path="/gateways/:gw" element={<GatewayPage />} />
            <Route path="/gateways/:gw/new-function" element={<FunctionEditorPage />} />
            <Route path="/gateways/:gw/functions/*" element={<FunctionEditorPage />} />
            <Route path="/applications" element={<ApplicationsPage />} />
            <Route path="/agents" element={<AgentsPage />} />
            <Route path="*" element={<Text>No such page. <Link to="/">Back to the gateways</Link></Text>} />
          </Routes>
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
