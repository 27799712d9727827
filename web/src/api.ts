// The panel's only way to the server: the /v1 API with the bearer token of the session.
// Every error the API returns is application/problem+json; its `detail` says what to do and is
// shown to the user as it is.

const TOKEN_KEY = 'outpost.token';
const TENANT_KEY = 'outpost.tenant';
/** Raised on window when the API refuses the session's token. */
export const SIGNED_OUT_EVENT = 'outpost:signed-out';

export interface Caller {
  role: 'operator' | 'tenant';
  tenantId: string | null;
  keyId: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: Array<{ path: string; message: string }> = [],
  ) {
    super(detail);
  }
}

// The token lives in sessionStorage: gone when the tab closes, never in a cookie or the URL.
export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  setToken: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  /** The tenant the operator is looking at. */
  tenant: (): string | null => sessionStorage.getItem(TENANT_KEY),
  setTenant: (tenantId: string | null): void => (tenantId ? sessionStorage.setItem(TENANT_KEY, tenantId) : sessionStorage.removeItem(TENANT_KEY)),
  clear: (): void => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(TENANT_KEY);
  },
};

type Query = Record<string, string | number | undefined | null>;

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && 'detail' in body && typeof body.detail === 'string') {
      const errors = 'errors' in body && Array.isArray(body.errors) ? body.errors.filter(isIssue) : [];
      return new ApiError(response.status, body.detail, errors);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  return new ApiError(response.status, `the server answered ${response.status} ${response.statusText}`.trim());
}

function isIssue(value: unknown): value is { path: string; message: string } {
  return typeof value === 'object' && value !== null && 'path' in value && 'message' in value && typeof value.path === 'string' && typeof value.message === 'string';
}

/** Calls the API; resolves to the JSON body (undefined for 204), rejects with ApiError. */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: { body?: unknown; query?: Query; token?: string } = {}): Promise<T> {
  const token = options.token ?? session.token();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url(path, options.query), { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  } catch {
    throw new ApiError(0, 'the server cannot be reached; check the network and try again');
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    // The session's token stopped working (key revoked, operator token changed): sign in again.
    if (response.status === 401 && options.token === undefined && token) {
      session.clear();
      window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT, { detail: problem.detail }));
    }
    throw problem;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Path of a tenant's resource, ids escaped. */
export const tenantPath = (tenantId: string, ...rest: string[]): string =>
  ['/v1/tenants', tenantId, ...rest].map((part, index) => (index === 0 ? part : encodeURIComponent(part))).join('/');

let routeSet: Set<string> | undefined;
/** "METHOD /path/{param}" of every route the server documents: views of missing routes say so. */
export async function availableRoutes(): Promise<Set<string>> {
  if (routeSet) return routeSet;
  const doc = await api<{ paths?: Record<string, Record<string, unknown>> }>('GET', '/v1/openapi.json');
  const set = new Set<string>();
  for (const [path, methods] of Object.entries(doc.paths ?? {})) for (const method of Object.keys(methods)) set.add(`${method.toUpperCase()} ${path}`);
  routeSet = set;
  return set;
}
