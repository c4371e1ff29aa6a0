// What the rest of kincare needs from the device side: credentials checking, cache invalidation
// and commands to devices, whichever broker (embedded or external) carries them.
import { newId } from "../ids";
import type { SecretHasher } from "./credentials";
import type { MqttEndpoint } from "./devices.service";
import type { CommandType } from "./protocol";

export interface DeviceLink {
  hasher: SecretHasher;
  endpoint: MqttEndpoint;
  /** A device's credentials or owner changed: drop cached state and its live connection. */
  deviceChanged(deviceId: string, opts: { disconnect: boolean }): void;
  /** A resident's plan or status changed: rules use the new one from now on. */
  residentChanged(residentId: string): void;
  /** Sends a command on the device's cmd topic (QoS 1). Returns the cmdId it carries. */
  sendCommand(
    deviceId: string,
    type: CommandType,
    fields?: Record<string, unknown>,
  ): Promise<string>;
}

export function commandPayload(type: CommandType, fields: Record<string, unknown> = {}) {
  const cmdId = newId();
  return {
    cmdId,
    payload: JSON.stringify({ cmdId, type, ts: new Date().toISOString(), ...fields }),
  };
}
