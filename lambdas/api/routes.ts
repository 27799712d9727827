// The route table of the API: every route, in the order of the OpenAPI document.
import type { Route } from './route.js';
import { auditRoutes } from './routes-audit.js';
import { dkimRoutes } from './routes-dkim.js';
import { holdRoutes } from './routes-holds.js';
import { lockRoutes } from './routes-locks.js';
import { messageRoutes } from './routes-messages.js';
import { quarantineRoutes } from './routes-quarantine.js';
import { queueRoutes } from './routes-queues.js';
import { suppressionRoutes } from './routes-suppression.js';
import { tenantRoutes } from './routes-tenants.js';
import { userRoutes } from './routes-users.js';

export const apiRoutes: Route[] = [...tenantRoutes, ...userRoutes, ...messageRoutes, ...lockRoutes, ...holdRoutes, ...dkimRoutes, ...quarantineRoutes, ...suppressionRoutes, ...queueRoutes, ...auditRoutes];
