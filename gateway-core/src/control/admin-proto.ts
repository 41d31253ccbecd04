// Loads proto/braid/v1/admin.proto (braid.v1.AdminService) the same way proto.ts loads the
// session service.
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { braidMethod, braidService } from './proto.js';

export const ADMIN_SERVICE = 'braid.v1.AdminService';
export const ADMIN_METHODS = ['GetStatus', 'ListPaths', 'ListSessions', 'ListEvents', 'GetPolicy', 'SetPolicy'] as const;
export type AdminMethod = (typeof ADMIN_METHODS)[number];

export function adminServiceDefinition(): ServiceDefinition {
  return braidService('admin.proto', ADMIN_SERVICE, 'GetStatus');
}

export function adminMethod(name: AdminMethod): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('admin.proto', ADMIN_SERVICE, name);
}
