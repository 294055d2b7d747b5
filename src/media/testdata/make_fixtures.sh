#!/bin/sh
# Regenerates the ffprobe JSON fixtures in probe/ from small clips made with lavfi.
# Captured with ffmpeg 5.1 (Debian 12). Run from anywhere; needs ffmpeg, ffprobe.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/reframe-fixtures
rm -rf "$work" && mkdir -p "$work" && cd "$work"
ff() { ffmpeg -v error -nostdin -y "$@"; }
probe() { ffprobe -v error -print_format json -show_format -show_streams -show_chapters "file:$work/$1" > "$here/probe/$1.json"; }
tsrc="testsrc=size=160x90:rate=25"

# plain h264 + aac mp4
ff -f lavfi -i "$tsrc" -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 \
   -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest plain.mp4
probe plain.mp4

# mkv: two audio tracks, ass subtitle, font attachment, chapters
cat > subs.ass <<'ASS'
[Script Info]
ScriptType: v4.00+
PlayResX: 160
PlayResY: 90

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,DejaVu Sans,12,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,Hello
ASS
cat > chapters.txt <<'CH'
;FFMETADATA1
title=Fixture
[CHAPTER]
TIMEBASE=1/1000
START=0
END=1000
title=Opening
[CHAPTER]
TIMEBASE=1/1000
START=1000
END=2000
title=Ending
CH
ff -f lavfi -i "$tsrc" -f lavfi -i sine=frequency=440:sample_rate=48000 \
   -f lavfi -i sine=frequency=880:sample_rate=44100 -i subs.ass -i chapters.txt \
   -attach /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf -t 2 \
   -map 0:v -map 1:a -map 2:a -map 3:s -map_metadata 4 -map_chapters 4 \
   -c:v libx264 -pix_fmt yuv420p -c:a:0 libopus -c:a:1 aac -c:s ass \
   -metadata:s:a:0 language=eng -metadata:s:a:1 language=jpn -metadata:s:a:1 title=Commentary \
   -metadata:s:s:0 language=eng -metadata:s:t:0 mimetype=application/x-truetype-font rich.mkv
probe rich.mkv

# rotation: ffmpeg 5.1 only writes the display matrix when stream copying, and its
# `rotate` tag is turned into a matrix of the opposite sense to what ffmpeg 4 read back.
ff -i plain.mp4 -map 0:v -c copy -metadata:s:v:0 rotate=90 rotate_tag90.mp4
probe rotate_tag90.mp4
ff -i plain.mp4 -map 0:v -c copy -metadata:s:v:0 rotate=270 rotate_tag270.mp4
probe rotate_tag270.mp4

# 10-bit with PQ transfer (HDR10 signalling)
ff -f lavfi -i "$tsrc" -t 1 -c:v libx264 -pix_fmt yuv420p10le \
   -color_trc smpte2084 -color_primaries bt2020 -colorspace bt2020nc hdr10.mkv
probe hdr10.mkv

# interlaced, top field first (x264 needs height divisible by 4 here)
ff -f lavfi -i testsrc=size=160x96:rate=25 -t 1 -c:v libx264 -pix_fmt yuv420p \
   -flags +ildct+ilme -top 1 interlaced.mkv
probe interlaced.mkv

# audio only
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 -c:a aac audio.m4a
probe audio.m4a

# cover art: a PNG attached picture listed before the real video stream's audio
ff -f lavfi -i testsrc=size=64x64:rate=1 -frames:v 1 cover.png
ff -i cover.png -f lavfi -i "$tsrc" -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 \
   -map 0:v -map 1:v -map 2:a -c:v:0 png -c:v:1 libx264 -pix_fmt yuv420p -c:a aac \
   -disposition:v:0 attached_pic -disposition:v:1 default cover.mp4
probe cover.mp4
ff -i cover.png -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 \
   -map 1:a -map 0:v -c:a aac -c:v png -disposition:v:0 attached_pic cover_audio.m4a
probe cover_audio.m4a

# Matroska keeps cover images as attachments; ffprobe lists an image attachment as a video
# stream with disposition attached_pic (tags filename, mimetype), not as codec_type attachment.
ff -f lavfi -i "$tsrc" -t 1 -attach cover.png -metadata:s:t mimetype=image/png \
   -c:v libx264 -pix_fmt yuv420p cover_attach.mkv
probe cover_attach.mkv

# progress/*.txt were captured once (block count depends on timing, so they are not
# regenerated here) with:
#   ffmpeg -v error -nostats -y -f lavfi -i testsrc=size=320x180:rate=25 -t 4 \
#     -c:v libx264 -preset veryslow -progress pipe:1 -f null -            > x264_null.txt
#   ffmpeg -v error -nostats -y -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine -t 3 \
#     -c:v libx264 -preset slower -c:a aac -progress pipe:1 -f mp4 p.mp4 > x264_aac_mp4.txt
#   ffmpeg -v error -nostats -y -f lavfi -i testsrc=size=1280x720:rate=25 -t 2 -c:v libx265 \
#     -preset slow -x265-params log-level=error -progress pipe:1 -stats_period 0.2 \
#     -f matroska p.mkv                                                  > x265_mkv.txt
