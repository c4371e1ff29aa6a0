// Files for an external Mosquitto 2.0 broker: password-file lines for device credentials and
// the ACL that confines each device to its own topics.
import { pbkdf2Sync, randomBytes } from "node:crypto";

// What mosquitto_passwd 2.0 writes by default ("$7$" = PBKDF2-HMAC-SHA512). The broker reads
// the iteration count back from the line, but rejects ("Unable to decode password salt") any
// salt that does not decode to exactly 12 bytes and any hash that is not 64 bytes.
const PBKDF2_SHA512 = 7;
const ITERATIONS = 101;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

/** `$7$101$<base64 salt>$<base64 hash>`, as `mosquitto_passwd -b file user password` writes. */
export function mosquittoPasswordHash(password: string, salt: Buffer = randomBytes(SALT_BYTES)) {
  if (salt.length !== SALT_BYTES) {
    throw new RangeError(`Mosquitto 2.0 needs a ${SALT_BYTES}-byte salt, got ${salt.length}`);
  }
  const hash = pbkdf2Sync(Buffer.from(password, "utf8"), salt, ITERATIONS, HASH_BYTES, "sha512");
  return `$${PBKDF2_SHA512}$${ITERATIONS}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** One line of a password file. Mosquitto splits on ':' and trims blanks, so refuse both. */
export function mosquittoPasswordLine(username: string, hash: string): string {
  if (username === "" || /[:\s]/.test(username) || /\p{Cc}/u.test(username)) {
    throw new RangeError(`not a Mosquitto password-file username: ${JSON.stringify(username)}`);
  }
  return `${username}:${hash}\n`;
}

/**
 * The ACL for kincare's topic tree. The service user reads what devices send and writes their
 * commands; a device (pattern rules, %u = its username = its device id) writes only under its
 * own root and reads only its own cmd topic. A shared subscription `$share/<group>/<filter>` is
 * checked against <filter>, so the read rules cover kincare's shared group too.
 *
 * Mosquitto 2.0 grants every SUBSCRIBE and applies the read rules to each message it delivers;
 * a publish the write rules refuse is PUBACKed and dropped under MQTT 3.1.1 (v5: reason 0x87).
 */
export function mosquittoAclFor(topicPrefix: string, serviceUsername: string): string {
  if (/[#+\s]/.test(topicPrefix) || topicPrefix.startsWith("/") || topicPrefix.endsWith("/")) {
    throw new RangeError(`not a topic prefix: ${JSON.stringify(topicPrefix)}`);
  }
  if (/\s/.test(serviceUsername) || serviceUsername === "") {
    throw new RangeError(`not a username: ${JSON.stringify(serviceUsername)}`);
  }
  const root = `${topicPrefix}/devices`;
  return [
    `user ${serviceUsername}`,
    ...["telemetry", "event", "status", "heartbeat", "cmd/ack"].map(
      (leaf) => `topic read ${root}/+/${leaf}`,
    ),
    `topic write ${root}/+/cmd`,
    "",
    `pattern write ${root}/%u/#`,
    `pattern read ${root}/%u/cmd`,
    "",
  ].join("\n");
}
