// @braid/gateway-edge public surface.
export {};
