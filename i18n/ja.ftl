# ウィンドウのメッセージ（日本語）。メッセージ ID と変数は en.ftl と同じです。
# ここにないメッセージは英語で表示されます。

language-name = 日本語

## ツールバー、ステータスバー、アクティビティログ

toolbar-add-files = 📂 ファイルを追加…
toolbar-add-files-hint = キューに追加する動画を選びます（Ctrl+O）
toolbar-add-folder = 📁 フォルダーを追加…
toolbar-add-folder-hint = フォルダーとそのサブフォルダーにあるすべての動画を追加します
toolbar-scanning = ファイルを確認しています…
activity-log = アクティビティログ
activity-log-hint = ワーカーのメッセージとエラーの表示を切り替えます
tools-missing = ⚠ ffmpeg が見つかりません
tools-check-again = 再確認
start = ▶ 開始
start-hint = キューの動画を順番に処理します（Space）
cancel = ■ キャンセル
cancel-hint = 実行中のジョブを停止します。後で再開できます（Space）
status-cancelling = キャンセルしています…
status-chunk = チャンク { $done }/{ $total }
status-ready = 準備完了
status-ready-queued = 準備完了 · 待機中 { $count } 件
log-clear = クリア
log-copy = コピー
log-empty = まだ何もありません。
drop-overlay = ドロップしてキューに追加
list-separator = 、

## キュー

queue-heading = キュー
queue-clear-finished = 完了済みを消去
queue-clear-finished-hint = 完了したジョブをキューから消去します
queue-empty = 動画はまだありません。
queue-thumbnail-alt = { $name } のライブサムネイル
menu-resume = 再開
menu-retry = 再試行
menu-move-up = 上へ移動
menu-move-down = 下へ移動
remove = 削除
show-in-folder = フォルダーで表示

## ジョブの状態と一行の要約

state-queued = 待機中
state-running = 実行中
state-done = 完了
state-failed = 失敗
state-cancelled = キャンセル済み
state-interrupted = 中断
summary-queued-resume = 待機中 · 再開予定
summary-queued-restart = 待機中 · 最初からやり直し
summary-starting = 開始しています…
summary-step-percent = { $step ->
        [validate] 検証
        [package] パッケージ化
        [verify] 最終確認
       *[upscale] アップスケール
    } { $percent }%
summary-fps = { $fps } fps
summary-eta = 残り { $time }
summary-done-in = 完了（{ $time }）
summary-resumable = { $state } · 再開できます
summary-done = 完了 { $count } 件
summary-failed = 失敗 { $count } 件
summary-cancelled = キャンセル { $count } 件
summary-nothing-left = 残りの作業はありません

## ステップ

step-title = { $step ->
        [validate] 検証
        [package] パッケージ化
        [verify] 最終確認
       *[upscale] アップスケール
    }

## 設定パネル

settings-heading = 設定
settings-engine = エンジン
settings-size = サイズ
size-scale = 倍率 { $scale }×
size-scale-denoise-only = 1×（ノイズ除去のみ）
size-height = 高さ { $height }p
settings-denoise = ノイズ除去
settings-denoise-off = オフ
settings-denoise-conservative = { $level }（控えめ）
settings-denoise-hint = モデルによるノイズ除去：オフ、またはレベル 0（弱）〜 3（強）
settings-models = モデル
settings-models-none = なし
settings-models-hint = ニューラルエンジンのモデルファイルがあるフォルダー：{ $path }
settings-models-missing = このフォルダーに見つからないエンジン：{ $engines }
settings-models-unusable = 使用できないモデル（理由はポインターを重ねて表示）：{ $models }
settings-models-choose-hint = モデルファイルのフォルダーを選んでください
settings-models-default = 既定
settings-models-default-hint = $REFRAME_MODELS_DIR または既定のモデルフォルダーからもう一度探します
settings-preset = プリセット
settings-preset-yours = { $name }（ユーザー定義）
settings-output = 書き出し先
settings-output-beside = 各入力と同じフォルダー
settings-output-beside-button = 入力と同じ場所
settings-output-beside-hint = 書き出し先を各入力と同じフォルダーに戻します
choose-folder = フォルダーを選択…
settings-chunk-length = チャンクの長さ
settings-seconds-suffix = {" "}秒
settings-chunk-length-hint = 一度に処理するチャンク（区間）の長さです。処理が中断されても、失われるのは最大 1 チャンク分です
settings-language = 言語
settings-language-system = システム（{ $language }）
settings-language-hint = ウィンドウの表示言語です。すぐに切り替わります
settings-deinterlace = インターレース動画のインターレースを解除する
settings-overwrite = 既存の出力を上書きする
settings-save-preset = プリセットとして保存…
settings-save-preset-hint = 選択中のプリセットを別の名前で保存します
settings-apply-note = 設定はジョブの開始時に適用されます。開始済みのジョブは開始時の設定のままです。

## 空のウィンドウ

empty-title = ここに動画またはフォルダーをドロップ
empty-subtitle = キューに追加されます。「開始」を押すとアップスケールして再エンコードします。
empty-add-files = ファイルを追加…
empty-add-folder = フォルダーを追加…
empty-output-note = 設定で書き出し先を指定しない場合、出力は各入力と同じフォルダーに保存されます。

## 選択中のジョブ

header-details = 詳細
header-details-hint = このジョブの入力、出力、設定、ステップごとの進行状況を表示します
header-remove-hint = キューから削除します（Delete）
header-resume = ⟲ 再開
header-resume-hint = もう一度キューに追加します。最後に完了したチャンクの続きから処理します
header-retry = ⟲ 再試行
header-retry-hint = もう一度キューに追加します
details-input = 入力
details-output = 出力
details-output-later = ジョブの開始時に決まります
details-settings = 設定
details-spec = { $engine } · { $size } · { $preset } · チャンク { $seconds } 秒
details-spec-from-panel = { $spec }（設定パネルの値）
details-chunks = チャンク
chunks-done-of = { $total } 個中 { $done } 個完了
details-speed = 速度
details-fps = { $fps } フレーム/秒
details-time-left = 残り時間
details-session = セッション
details-error = エラーの内容
details-worker-log = ワーカーのログ（最後の数行）
details-warnings = 警告

## プレビュー

preview-reading-file = ファイルを読み込んでいます…
preview-unreadable = プレビューできません：ファイルを読み込めませんでした
preview-probe-failed = ファイルの確認を開始できませんでした：{ $error }
preview-fit = 全体表示
preview-fit-hint = フレーム全体を表示します（フレームをダブルクリック）
preview-one-to-one-hint = 等倍表示：出力の 1 ピクセルを画面の 1 ピクセルで表示します
preview-position = フレーム { $frame } / { $frames } · { $time } / { $duration }
preview-try-again = ⟲ 再試行
preview-try-again-hint = 失敗した処理をプレビューワーカーにもう一度依頼します
preview-keys = ⌨ キー操作
preview-before-after = 処理前と処理後
preview-preparing = フレームを準備しています…
preview-split = 分割線
preview-split-hint = ドラッグして処理前（左）と処理後（右）の境目を動かします
preview-before-size = 処理前 { $width }×{ $height }
preview-after-size = 処理後 { $width }×{ $height }
preview-after-pending-size = 処理後 { $width }×{ $height } · 処理中
preview-after-pending = このフレームをアップスケールしています…（ニューラルエンジンは 1 フレームに数秒かかります）
preview-approx-before = ≈ キーフレーム（{ $frames } フレーム前）
preview-approx-after = ≈ キーフレーム（{ $frames } フレーム後）
preview-approx-same = ≈ キーフレーム（縮小表示）
preview-after-approximate = 正確なフレームをデコードしています…
preview-timeline = タイムライン
preview-timeline-hint = ドラッグして動画内を移動します（←/→ で 1 フレーム、Shift+←/→ で 1 秒）
preview-spectrogram = スペクトログラム
preview-spectrogram-hint = Ctrl+ホイール：ズーム · Shift+ホイールまたはドラッグ：移動 · クリック：カーソルをその位置へ移動
preview-no-audio = 音声トラックがありません
preview-reading-audio = 音声を読み込んでいます…
preview-computing = 計算中…
spectrum-cwt-log = CWT · 対数 Hz
spectrum-stft-log = STFT · 対数 Hz
spectrum-stft-linear = STFT · 線形 Hz

## 操作方法（キー、その働き）

keys-frame = ←  →
keys-frame-what = 1 フレーム戻る / 進む
keys-second = Shift+←  →
keys-second-what = 1 秒戻る / 進む
keys-ends = Home  End
keys-ends-what = 最初 / 最後のフレームへ
keys-wheel = フレーム上でホイール
keys-wheel-what = ポインターの位置を中心にズーム
keys-drag-frame = フレームをドラッグ
keys-drag-frame-what = 表示位置を移動（ダブルクリックで全体表示）
keys-drag-split = 分割線をドラッグ
keys-drag-split-what = 処理前と処理後の境目を移動
keys-timeline = タイムラインをドラッグまたはクリック
keys-timeline-what = カーソルを移動
keys-spectrum-zoom = スペクトログラム上で Ctrl+ホイール
keys-spectrum-zoom-what = 表示する時間範囲をズーム
keys-spectrum-pan = Shift+ホイールまたはドラッグ
keys-spectrum-pan-what = スペクトログラムの表示位置を移動
keys-spectrum-click = スペクトログラムをクリック
keys-spectrum-click-what = その位置にカーソルを移動
keys-space = Space
keys-space-what = キューの開始 / キャンセル
keys-delete = Delete
keys-delete-what = 選択中のジョブを削除
keys-open = Ctrl+O
keys-open-what = ファイルを追加

## ダイアログ

dialog-add-videos = 動画を追加
dialog-filter-videos = 動画
dialog-filter-all = すべてのファイル
dialog-add-folder = 動画フォルダーを追加
dialog-output-folder = 書き出し先フォルダー
dialog-models-folder = モデルファイルのフォルダー
dialog-cancel = キャンセル
close-title = ジョブを実行中です
close-body = 閉じるとジョブは停止します。次に reframe を開いたとき、最後に完了したチャンクから再開できます。
close-stop = 停止して閉じる
close-keep = 処理を続ける
preset-dialog-title = プリセットとして保存
preset-dialog-body = 「{ $preset }」のコピーを新しい名前で保存します：
preset-dialog-invalid = 使用できるのは半角英数字、- と _ だけです。
preset-dialog-save = 保存
resume-title = 以前の実行が見つかりました
resume-file = ファイル
resume-last-updated = 最終更新
resume-settings = 設定
resume-settings-value = サイズ：{ $size }   エンジン：{ $engine }   プリセット：{ $preset }
resume-explain = 「再開」は最後に完了したチャンクから続けます。「最初からやり直す」はその作業を破棄して最初から始めます。
resume-differences = 現在の設定はその実行時と異なります：
resume-difference = { $setting ->
        [engine] エンジン
        [model] モデル
        [scale] 倍率
        [target-height] 目標の高さ
        [denoise] ノイズ除去
        [preset] プリセット
        [chunk-length] チャンクの長さ
        [deinterlace] インターレース解除
       *[other] { $setting }
    }：{ $from } → { $to }
resume-difference-preset-contents = プリセット { $preset }：内容が変更されています（{ $from } → { $to }）
setting-value-unset = なし
setting-value-on = オン
setting-value-off = オフ
setting-value-seconds = { $seconds } 秒
resume-explain-differences = 「再開」はその実行時の設定で続けます。「最初からやり直す」は現在の設定で最初から始めます。
resume-dialog-more = このほかにも、以前の実行が残っているファイルがあと { $count } 個あります。
resume-resume = 再開
resume-resume-hint = 中断したところから続けます
resume-restart = 最初からやり直す
resume-restart-hint = 現在の設定で最初から始めます
resume-cancel-hint = このファイルをキューに追加しません

## アクティビティログと通知

log-interrupted-last-time = 前回 { $count } 件のジョブが中断されました。ジョブを選んで「再開」を押すと続きから処理します
log-no-file-dialog = ファイルダイアログを表示できませんでした（xdg-desktop-portal または zenity が必要です）。代わりにファイルやフォルダーをウィンドウにドロップしてください
log-missing-font = このシステムには{ $script ->
        [cjk] 日本語・中国語・韓国語
        [hebrew] ヘブライ語
        [arabic] アラビア語
        [devanagari] デーヴァナーガリー
        [indic] インド系
        [thai] タイ語
        [lao] ラオ語
        [georgian] ジョージア語
        [armenian] アルメニア語
        [khmer] クメール語
        [myanmar] ミャンマー語
        [ethiopic] エチオピア語
       *[other] { $script }
    }の文字（「{ $example }」など）を表示できるフォントがありません（四角で表示されます）：Debian や Ubuntu では `sudo apt install { $package }` などでインストールしてください
log-no-models-folder = モデルフォルダーがありません：内蔵エンジンのみ使用できます
log-models-folder-empty = モデルフォルダー { $path }：モデルファイルが見つかりません（`reframe engines` を参照）
log-models-folder-found = モデルフォルダー { $path }：{ $engines }
log-scan-failed = ドロップされたファイルを確認できませんでした：{ $error }
log-skipped = スキップ（{ $reason }）：{ $path }
log-skipped-more = …ほか { $count } 件をスキップしました
log-added = { $count } 本の動画をキューに追加しました
log-not-queued = キューに追加しませんでした：{ $path }
log-cannot-remove-running = 実行中のジョブは削除できません。先にキャンセルしてください
log-cannot-start = 開始できません：{ $error }
log-cancelling = 実行中のジョブをキャンセルしています…
log-queue-finished = キューの処理が終わりました：{ $summary }
log-starting = { $name } を開始します
log-worker-started = 処理ワーカーを起動しました（pid { $pid }）
log-worker-ended = 処理ワーカー { $pid } が終了しました：{ $exit }
log-job-resuming = { $name }：再開します（チャンク { $total } 個中 { $done } 個は完了済み）
log-job-chunks = { $name }：約 { $seconds } 秒のチャンクを { $count } 個処理します
log-job-done = 完了：{ $path }
log-job-cancelled = { $name }：キャンセルしました。再開できます
log-thumbnail-failed = ライブサムネイルの読み込みを開始できませんでした：{ $error }
log-thumbnail-unreadable = ライブサムネイルを読み込めませんでした（{ $error }）：{ $path }
log-preset-saved = プリセット { $name } を保存しました：{ $path }
log-preset-save-failed = プリセット { $name } を保存できませんでした：{ $error }
log-dialog-failed = ファイルダイアログを開けませんでした：{ $error }
log-file-manager-failed = ファイルマネージャーを開けませんでした（{ $error }）。出力は { $path } にあります
log-state-unreadable = 保存済みの状態を読み込めませんでした（{ $error }）。初期状態で開始します：{ $path }
log-state-broken = 保存済みの状態が壊れていました（{ $error }）。初期状態で開始します。元のファイルは { $path } として残してあります
notice-added = { $count } 本の動画を追加しました
notice-added-skipped = { $count } 本の動画を追加し、{ $skipped } 件をスキップしました（詳しくはアクティビティログを参照）
notice-nothing-queued = キューに何もありません：動画を追加するか、ジョブの「再開」を押してください
notice-queue-finished = キューの処理が終わりました：{ $summary }
skip-already-queued = すでにキューにあります
skip-unreadable = 読み込めません（{ $error }）
skip-folder-unreadable = フォルダーを読み込めません（{ $error }）
skip-not-a-video = 動画ファイルではありません（拡張子で判定）
skip-too-many-entries = 項目が { $count } 件に達したため打ち切りました。より小さなフォルダーを追加してください
note-sessions-unavailable = 以前の実行を確認できません：{ $error }
note-session-unreadable = この動画の以前の実行を読み込めなかったため無視します（{ $error }）：{ $path }

## ウィンドウがジョブに書くエラー

error-worker-unresponsive = 処理ワーカーが { $seconds } 秒間応答しなかったため停止しました。「再開」を押すと、最後に完了したチャンクから続けます。
error-worker-version = 処理ワーカーのプロトコルバージョンは { $worker }、このウィンドウは { $window } です。両方が同じビルドになるよう reframe を再インストールしてください。
error-worker-crashed = 処理ワーカーがクラッシュしました（{ $exit }）。「再開」を押すと、最後に完了したチャンクから続けます。ワーカーの最後のメッセージを下に示します。
