/**
 * The events kiray-imaging publishes on EventBridge (source `kiray.imaging`).
 * Generated from schemas/*.json by json-schema-to-typescript (generate.mjs): edit a schema, then run
 * `npm run generate`; never edit this file by hand.
 */

/**
 * An event kiray-imaging publishes, as EventBridge delivers it to a consumer (a rule's target: SQS, Lambda, an API destination): EventBridge's envelope around one of our details, told apart by `detail-type`. The envelope is EventBridge's, not ours, so it is left open (no `additionalProperties: false`): EventBridge and its emulators add fields of their own (a replay's `replay-name`, moto's `ingestion-time`).
 */
export type KirayImagingEvent = RenditionCreatedEvent | RenditionFailedEvent | RenditionsDeletedEvent;
/**
 * ARNs the event concerns: empty, as our events name no AWS resource.
 */
export type EnvelopeResources = string[];
/**
 * Which function (rendition) the event is about: `thumbnail` (the listing card's photo, with a 2× retina file when the upload is large enough) or `medium` (the listing page's photo).
 */
export type Rendition = "thumbnail" | "medium";

/**
 * A `Rendition Created` event as delivered.
 */
export interface RenditionCreatedEvent {
  /**
   * EventBridge's envelope version (`"0"`).
   */
  version: string;
  /**
   * EventBridge's ID of the event. Not a key to deduplicate on: when an invocation is retried, the event is sent again under a new ID with the same facts (the upload's key and ETag and the rendition tell one event from another).
   */
  id: string;
  /**
   * Which event this is; it says what `detail` is.
   */
  "detail-type": "Rendition Created";
  /**
   * Who sent the event: always `kiray.imaging`.
   */
  source: "kiray.imaging";
  /**
   * The AWS account the event was sent from.
   */
  account: string;
  /**
   * When the event was sent (ISO 8601, UTC).
   */
  time: string;
  /**
   * The AWS region the event was sent from.
   */
  region: string;
  resources: EnvelopeResources;
  /**
   * The name of the EventBridge archive replay that re-sent this event; absent on a first delivery.
   */
  "replay-name"?: string;
  detail: RenditionCreated;
}
/**
 * The `detail` of a `Rendition Created` event: one per rendition (function) and upload version, sent after all its files are written. Closed (`additionalProperties: false`) at every level, like every detail: the schema lists every field we send and our tests check each event against it, so a misspelt or undocumented field fails our build, not the backend's; a new field is added to the schema first (a minor version of this package), and consumers should ignore fields they do not know.
 */
export interface RenditionCreated {
  /**
   * The version of this contract the detail follows. Additive changes (a new optional field, a new error class) keep 1; a change that could break a consumer gets a new number.
   */
  schemaVersion: 1;
  upload: Upload;
  rendition: Rendition;
  /**
   * Every file this rendition wrote for this upload version, at least one.
   *
   * @minItems 1
   */
  files: [RenditionFile, ...RenditionFile[]];
  placeholder?: Placeholder;
  fingerprint?: Fingerprint;
  /**
   * The keys of the files this upload version superseded (an earlier version of the same upload key), deleted when this event is sent. Absent when nothing was superseded.
   *
   * Items: An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  replaces?: string[];
}
/**
 * The upload version the renditions were made from.
 */
export interface Upload {
  /**
   * The S3 bucket.
   */
  bucket: string;
  /**
   * An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  key: string;
  /**
   * The upload version's S3 ETag without its quotes, e.g. `9b2cf535f27731c974343645a3985328` (multipart uploads end in `-N`).
   */
  etag: string;
  /**
   * The S3 version ID of the upload. Present on versioned buckets only.
   */
  versionId?: string;
  /**
   * The S3 event sequencer (hexadecimal) of the upload's notification: among events of one key, a greater sequencer is a later version (compare as S3 documents: right-pad the shorter with zeros, then compare the hexadecimal values). Absent when a backfill task, not an upload notification, made the renditions.
   */
  sequencer?: string;
  /**
   * The upload's width in pixels as displayed, i.e. after its EXIF orientation is applied.
   */
  width: number;
  /**
   * The upload's height in pixels as displayed, i.e. after its EXIF orientation is applied.
   */
  height: number;
  /**
   * The upload's image format, as read from its bytes (not from its name or Content-Type).
   */
  format: "jpeg" | "png" | "webp" | "gif" | "avif";
}
/**
 * One file a rendition wrote. Its key is versioned (it names the upload's ETag), so it is immutable and may be cached for ever.
 */
export interface RenditionFile {
  /**
   * An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  key: string;
  /**
   * The file's image format.
   */
  format: "jpeg" | "webp";
  /**
   * The file's Content-Type: `image/jpeg` for a `jpeg`, `image/webp` for a `webp`.
   */
  contentType: "image/jpeg" | "image/webp";
  /**
   * The file's width in pixels.
   */
  width: number;
  /**
   * The file's height in pixels.
   */
  height: number;
  /**
   * The file's size in bytes.
   */
  bytes: number;
  /**
   * The pixel density the file is for: 1 = the rendition's own size, 2 = its 2× (retina) file, the `2x` of a `srcset`.
   */
  scale: 1 | 2;
}
/**
 * A tiny preview to show while the file loads. Always on the thumbnail's event.
 */
export interface Placeholder {
  /**
   * The ThumbHash (https://evanw.github.io/thumbhash/) of the photo, base64 (standard alphabet, padded); decode it with the `thumbhash` package's `thumbHashToDataURL`.
   */
  thumbHash: string;
}
/**
 * A perceptual hash of the upright, colour-managed photo: near-duplicates (resized, recompressed, lightly edited) have hashes a small Hamming distance apart. Not a cryptographic hash. Always on the thumbnail's event.
 */
export interface Fingerprint {
  /**
   * How the hash was computed; only hashes of the same algorithm can be compared.
   */
  algorithm: "phash-dct64";
  /**
   * The 64-bit hash as 16 lowercase hexadecimal digits.
   */
  hash: string;
}
/**
 * A `Rendition Failed` event as delivered.
 */
export interface RenditionFailedEvent {
  /**
   * EventBridge's envelope version (`"0"`).
   */
  version: string;
  /**
   * EventBridge's ID of the event. Not a key to deduplicate on: when an invocation is retried, the event is sent again under a new ID with the same facts (the upload's key and ETag and the rendition tell one event from another).
   */
  id: string;
  /**
   * Which event this is; it says what `detail` is.
   */
  "detail-type": "Rendition Failed";
  /**
   * Who sent the event: always `kiray.imaging`.
   */
  source: "kiray.imaging";
  /**
   * The AWS account the event was sent from.
   */
  account: string;
  /**
   * When the event was sent (ISO 8601, UTC).
   */
  time: string;
  /**
   * The AWS region the event was sent from.
   */
  region: string;
  resources: EnvelopeResources;
  /**
   * The name of the EventBridge archive replay that re-sent this event; absent on a first delivery.
   */
  "replay-name"?: string;
  detail: RenditionFailed;
}
/**
 * The `detail` of a `Rendition Failed` event: a rendition could not be made from an upload and no retry will change that (the photo cannot be read, is in a format we do not take, is too large, or S3 refuses us the object). Transient failures are retried and send nothing. Closed (`additionalProperties: false`) at every level, like every detail: the schema lists every field we send and our tests check each event against it, so a misspelt or undocumented field fails our build, not the backend's; a new field is added to the schema first (a minor version of this package), and consumers should ignore fields they do not know. `error.class` is a string, not an enum: new classes may appear.
 */
export interface RenditionFailed {
  /**
   * The version of this contract the detail follows. Additive changes (a new optional field, a new error class) keep 1; a change that could break a consumer gets a new number.
   */
  schemaVersion: 1;
  upload: FailedUpload;
  rendition: Rendition;
  error: RenditionError;
}
/**
 * The upload that could not be made into a rendition. Its ETag is absent when the failure came before S3 told us one (e.g. access to the object was refused).
 */
export interface FailedUpload {
  /**
   * The S3 bucket.
   */
  bucket: string;
  /**
   * An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  key: string;
  /**
   * The upload version's S3 ETag without its quotes, e.g. `9b2cf535f27731c974343645a3985328` (multipart uploads end in `-N`).
   */
  etag?: string;
}
/**
 * Why the rendition failed.
 */
export interface RenditionError {
  /**
   * What kind of failure, the same class as the service's ERROR log line. Known classes: `DecodeError` (the file is damaged or not an image), `UnsupportedFormatError` (an image format we do not take, e.g. HEIC), `LimitExceededError` (too many pixels or bytes), `AccessDenied` and `AllAccessDisabled` (S3 refused the object), `InvalidObjectState` (the object is archived and must be restored first), `KMS.<code>` (its SSE-KMS key cannot be used), `StateDocumentError` (the upload's rendition state document is unreadable), `EventShapeError` (the notification was not of a shape we understand). New classes may appear: treat an unknown one as a generic failure.
   */
  class: string;
  /**
   * What went wrong, in words fit to show a person (an agent in the listing editor): one line, no stack trace.
   */
  message: string;
}
/**
 * A `Renditions Deleted` event as delivered.
 */
export interface RenditionsDeletedEvent {
  /**
   * EventBridge's envelope version (`"0"`).
   */
  version: string;
  /**
   * EventBridge's ID of the event. Not a key to deduplicate on: when an invocation is retried, the event is sent again under a new ID with the same facts (the upload's key and ETag and the rendition tell one event from another).
   */
  id: string;
  /**
   * Which event this is; it says what `detail` is.
   */
  "detail-type": "Renditions Deleted";
  /**
   * Who sent the event: always `kiray.imaging`.
   */
  source: "kiray.imaging";
  /**
   * The AWS account the event was sent from.
   */
  account: string;
  /**
   * When the event was sent (ISO 8601, UTC).
   */
  time: string;
  /**
   * The AWS region the event was sent from.
   */
  region: string;
  resources: EnvelopeResources;
  /**
   * The name of the EventBridge archive replay that re-sent this event; absent on a first delivery.
   */
  "replay-name"?: string;
  detail: RenditionsDeleted;
}
/**
 * The `detail` of a `Renditions Deleted` event: an upload was deleted, and this rendition's files of it were removed. Closed (`additionalProperties: false`) at every level, like every detail: the schema lists every field we send and our tests check each event against it, so a misspelt or undocumented field fails our build, not the backend's; a new field is added to the schema first (a minor version of this package), and consumers should ignore fields they do not know.
 */
export interface RenditionsDeleted {
  /**
   * The version of this contract the detail follows. Additive changes (a new optional field, a new error class) keep 1; a change that could break a consumer gets a new number.
   */
  schemaVersion: 1;
  upload: DeletedUpload;
  rendition: Rendition;
  /**
   * The keys of the files the deletion removed. May be empty: an upload that never had renditions of this kind still tells the backend it is gone.
   *
   * Items: An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  keys: string[];
}
/**
 * The upload that was deleted.
 */
export interface DeletedUpload {
  /**
   * The S3 bucket.
   */
  bucket: string;
  /**
   * An S3 object key as stored: decoded, never URL-encoded the way S3 notifications carry it.
   */
  key: string;
}
