// Refused: a failed rendition has no files. Each line tsc must refuse ends in a marker naming its error code; the
// test wants exactly those errors, on exactly those lines.
import type {KirayImagingEvent} from "@kiray/imaging-contract";

export function fileCount(event: KirayImagingEvent): number {
  switch (event["detail-type"]) {
    case "Rendition Failed":
      return event.detail.files.length; // tsc: TS2339
    default:
      return 0;
  }
}
