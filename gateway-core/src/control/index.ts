// Control plane (gRPC over mTLS): the cloud's SessionService server and the edge's Hello client.
export type {
  CarrierInfo, ControlServer, ControlServerOptions, Endpoint, ExtraService, HelloOptions, HelloReply, HelloRequest, PeerIdentity, TlsFiles,
} from './types.js';
export { ControlError, statusName } from './errors.js';
export { startControlServer } from './server.js';
export { sendHello } from './client.js';
export { PROTOCOL_VERSION, SESSION_SERVICE, loadControlProto, protoDir } from './proto.js';
export { HELLO_LIMITS, MAX_CONTROL_MESSAGE_BYTES, validateHelloReply, validateHelloRequest } from './validate.js';
export { peerIdentityOf, listenMtls, type MtlsListener, type MtlsListenerOptions } from './server.js';
export * from './admin-api.js';
export * from './admin-proto.js';
export * from './admin-server.js';
export * from './admin-client.js';
export * from './policy-proto.js';
export * from './policy-service.js';
export * from './policy-cloud.js';
export * from './admin-policy.js';
export * from './carrier-relay.js';
