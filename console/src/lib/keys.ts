// Keys shown in this page's lifetime, by grant id: memory only (gone on reload), so the agents page
// can use a key just created without asking for it again. Never written to any storage.

const keys = new Map<string, string>();

export const shownKeys = {
  remember(grantId: string, apiKey: string): void {
    keys.set(grantId, apiKey);
  },
  get(grantId: string): string | undefined {
    return keys.get(grantId);
  },
  forget(grantId: string): void {
    keys.delete(grantId);
  },
};
