// Loads proto/braid/v1/admin.proto (braid.v1.AdminService) the same way proto.ts loads the
// session service.
import { join } from 'node:path';
import { loadSync, type MethodDefinition, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, protoDir } from './proto.js';

export const ADMIN_SERVICE = 'braid.v1.AdminService';
export const ADMIN_METHODS = ['GetStatus', 'ListPaths', 'ListSessions', 'ListEvents', 'GetPolicy', 'SetPolicy'] as const;
export type AdminMethod = (typeof ADMIN_METHODS)[number];

let cached: PackageDefinition | undefined;

export function adminServiceDefinition(): ServiceDefinition {
  if (!cached) {
    const dir = protoDir();
    cached = loadSync(join(dir, 'braid/v1/admin.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  }
  const def = cached[ADMIN_SERVICE];
  if (!def || !('GetStatus' in def)) throw new Error(`${ADMIN_SERVICE} missing from admin.proto`);
  return def as ServiceDefinition;
}

export function adminMethod(name: AdminMethod): MethodDefinition<object, object, unknown, unknown> {
  const m = adminServiceDefinition()[name];
  if (!m) throw new Error(`${ADMIN_SERVICE}.${name} missing from admin.proto`);
  return m;
}
