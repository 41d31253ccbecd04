// @braid/gateway-cloud public surface.
export {};
