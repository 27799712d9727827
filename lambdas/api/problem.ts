// RFC 9457 problem details: every error the API returns has this shape and media type.
import type { z } from 'zod';

export const PROBLEM_TYPE = 'application/problem+json';

export interface ProblemIssue {
  path: string;
  message: string;
  code: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Validation failures only: one entry per zod issue. */
  errors?: ProblemIssue[];
}

const TITLES: Record<number, [slug: string, title: string]> = {
  400: ['validation', 'Invalid request'],
  401: ['unauthenticated', 'Authentication required'],
  403: ['forbidden', 'Forbidden'],
  404: ['not-found', 'Not found'],
  405: ['method-not-allowed', 'Method not allowed'],
  409: ['conflict', 'Conflict'],
  413: ['too-large', 'Request body too large'],
  415: ['unsupported-media-type', 'Unsupported media type'],
  422: ['unprocessable', 'Unprocessable request'],
  429: ['rate-limited', 'Too many requests'],
  500: ['internal', 'Internal error'],
  501: ['not-implemented', 'Not available in this deployment'],
};

/** Thrown by handlers; turned into a problem+json response by the app. */
export class ApiProblem extends Error {
  override name = 'ApiProblem';
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extra: { errors?: ProblemIssue[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }

  toProblem(): Problem {
    const [slug, title] = TITLES[this.status] ?? ['error', 'Error'];
    return { type: `urn:outpost:problem:${slug}`, title, status: this.status, detail: this.detail, ...(this.extra.errors ? { errors: this.extra.errors } : {}) };
  }
}

export const notFound = (detail: string): ApiProblem => new ApiProblem(404, detail);

export function validationProblem(where: 'path' | 'query' | 'body', error: z.ZodError): ApiProblem {
  const errors = error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message: issue.message,
    code: issue.code,
  }));
  const first = errors[0];
  const detail = first ? `${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : `invalid ${where}`;
  return new ApiProblem(400, detail, { errors });
}
